"""A verify report as text (people, cron mail) or JSON (machines, version 1); never prints."""

from __future__ import annotations

import json
from typing import Any

from reconciler.verify.compare import Outcome
from reconciler.verify.run import Status, TableReport, VerifyReport

SAMPLES = 5
JSON_VERSION = 1


def _sample(keys: tuple[str, ...]) -> str:
    more = f", ... (+{len(keys) - SAMPLES})" if len(keys) > SAMPLES else ""
    return ", ".join(keys[:SAMPLES]) + more


def _outcome_lines(t: TableReport, outcome: Outcome) -> list[str]:
    lines = []
    for provider in t.providers:
        missing = outcome.missing.get(provider, ())
        differing = outcome.differing.get(provider, ())
        lines.append(
            f"  {t.subscriber} <- {provider}  {t.table}: {len(missing)} missing, {len(differing)} differing"
        )
        if missing:
            lines.append(f"      missing:   {_sample(missing)}")
        if differing:
            lines.append(f"      differing: {_sample(differing)}")
    lines.append(f"  {t.subscriber}  {t.table}: {len(outcome.stale)} stale")
    if outcome.stale:
        lines.append(f"      stale:     {_sample(outcome.stale)}")
    for node, keys in sorted(outcome.moved.items()):
        lines.append(
            f"  {t.subscriber}  {t.table}: {len(keys)} moved: rows of {node}, which now reaches the tier"
            " above by another parent (--repair removes them here without touching the tiers above)"
        )
        lines.append(f"      moved:     {_sample(keys)}")
    return lines


def _table_text(t: TableReport) -> list[str]:
    head = f"{t.table} at {t.subscriber} (providers: {', '.join(t.providers)}): {t.status.value}"
    if t.reason:
        head += f" ({t.reason})"
    lines = [head]
    if t.found is not None and not t.found.consistent:
        lines += _outcome_lines(t, t.found)
    if t.repaired is not None:
        r = t.repaired
        after = "consistent" if t.after is not None and t.after.consistent else "still different"
        spared = f", {r.spared} stale row(s) spared (they pass again)" if r.spared else ""
        pruned = f", {r.pruned} moved row(s) removed here only" if r.pruned else ""
        lines.append(
            f"  repaired {t.subscriber}: {r.inserted} inserted, {r.updated} updated, "
            f"{r.deleted} deleted{spared}{pruned}; now {after}"
        )
        if t.after is not None and not t.after.consistent:
            lines += _outcome_lines(t, t.after)
    return lines


def totals(report: VerifyReport) -> dict[str, int]:
    """Differences found (before any repair), and table counts by status."""
    missing = differing = stale = moved = 0
    for t in report.tables:
        if t.found is not None:
            m, d, s = t.found.count()
            missing, differing, stale = missing + m, differing + d, stale + s
            moved += sum(len(keys) for keys in t.found.moved.values())
    by_status = {s.value: sum(1 for t in report.tables if t.status is s) for s in Status}
    return {
        "missing": missing,
        "differing": differing,
        "stale": stale,
        "moved": moved,
        "tables": len(report.tables),
        **by_status,
    }


def render_verify_text(report: VerifyReport) -> str:
    lines: list[str] = []
    for t in report.tables:
        lines += _table_text(t)
    for node, reason in report.unreachable.items():
        lines.append(f"unreachable: {node}: {reason}")
    lines += [f"note: {n}" for n in report.notes]
    n = totals(report)
    lines.append("")
    lines.append(
        f"Verify: {n['missing']} missing, {n['differing']} differing, {n['stale']} stale"
        + (f", {n['moved']} moved" if n["moved"] else "")
        + f" in {n['tables']} table(s); {n['undecided']} undecided, {n['error']} error(s)."
    )
    if report.repair:
        repaired = [t.repaired for t in report.tables if t.repaired is not None]
        pruned = sum(r.pruned for r in repaired)
        lines.append(
            f"Repair: {sum(r.inserted for r in repaired)} inserted, {sum(r.updated for r in repaired)} "
            f"updated, {sum(r.deleted for r in repaired)} deleted"
            + (f", {pruned} moved row(s) removed at their old parent only" if pruned else "")
            + "."
        )
    read = ", ".join(f"{node} {size}" for node, size in report.bytes_read.items())
    lines.append(f"Bytes read: {read or 'none'} (total {sum(report.bytes_read.values())}).")
    return "\n".join(lines) + "\n"


def _outcome_json(t: TableReport, outcome: Outcome | None) -> dict[str, Any] | None:
    if outcome is None:
        return None
    return {
        "edges": [
            {
                "provider": p,
                "missing": {
                    "count": len(outcome.missing.get(p, ())),
                    "sample": list(outcome.missing.get(p, ())[:SAMPLES]),
                },
                "differing": {
                    "count": len(outcome.differing.get(p, ())),
                    "sample": list(outcome.differing.get(p, ())[:SAMPLES]),
                },
            }
            for p in t.providers
        ],
        "stale": {"count": len(outcome.stale), "sample": list(outcome.stale[:SAMPLES])},
        "moved": [
            {"node": node, "count": len(keys), "sample": list(keys[:SAMPLES])}
            for node, keys in sorted(outcome.moved.items())
        ],
    }


def render_verify_json(report: VerifyReport, exit_code: int) -> str:
    """The report as JSON; `exit_code` is the command's (the CLI decides it), recorded for machines."""
    document = {
        "version": JSON_VERSION,
        "repair": report.repair,
        "tables": [
            {
                "subscriber": t.subscriber,
                "table": t.table,
                "providers": list(t.providers),
                "status": t.status.value,
                "reason": t.reason,
                "found": _outcome_json(t, t.found),
                "repaired": None
                if t.repaired is None
                else {
                    "inserted": t.repaired.inserted,
                    "updated": t.repaired.updated,
                    "deleted": t.repaired.deleted,
                    "spared": t.repaired.spared,
                    "pruned": t.repaired.pruned,
                },
                "after_repair": _outcome_json(t, t.after),
            }
            for t in report.tables
        ],
        "unreachable": report.unreachable,
        "notes": report.notes,
        "bytes_read": report.bytes_read,
        "summary": totals(report),
        "exit_code": int(exit_code),
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
