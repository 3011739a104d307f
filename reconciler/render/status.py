"""`reconcile status` as text for humans and as versioned JSON for machines.

JSON schema, format_version 1 (keys sorted, two-space indent, one trailing newline)::

    {
      "format_version": 1,
      "level": "ok"|"warn"|"crit",          # worst of everything below
      "exit_code": 0|2|3,
      "summary": {"ok": int, "warn": int, "crit": int, "unreachable": int},
      # null without migrations; at_release: nodes read whose schema_migration >= migration
      "release": {"migration": int, "nodes": int, "at_release": int, "summary": str}|null,
      "thresholds": {"max_lag_seconds": float, "max_lag_bytes": int,
                     "max_retained_wal": int, "warn_fraction": float},
      "nodes": [{"node", "level_name", "reachable", "reason", "server_version",
                 "pglogical_version", "last_apply": {...}|null, "drift": int|null,
                 "level", "findings": [{"level", "message"}],
                 "schema_migration": int|null,   # newest migration recorded, 0 none; null not read
                 # tables it still owes rows of (reconcile.pending_rows) and their repair's progress
                 "pending_rows": [{"table", "since", "rows_to_copy": int|null, "rows_copied",
                                   "bytes_copied", "copy_started", "updated_at"}]}],
      "edges": [{"subscriber", "provider", "subscription", "status", "slot",
                 "slot_active", "lag_bytes", "lag_seconds", "level", "findings",
                 # null while it replicates; cause is one of health.causes.Cause
                 "cause", "reason", "remedy", "worker_running", "down_seconds",
                 "retry_at", "apply_errors", "last_error", "failed_transaction",
                 "failed_lsn", "stuck_failures", "stuck_since"}],
      "slots": [{"node", "slot", "subscription", "orphan", "active", "wal_status",
                 "safe_wal_size", "retained_bytes", "level", "findings"}],
      "apps": [{"node", "url", "up", "http_status": int|null, "seconds",
                "reason", "level", "findings"}],  # nodes that declare app_url
      "freshness": [{"source", "observer", "seconds": float|null, "level",
                     "findings"}]   # monitoring: heartbeat; a leaf's newest beat per node above it
    }

Adding keys is compatible; removing or changing one raises format_version.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.health.judge import format_seconds
from reconciler.health.report import Finding, HealthReport, Level
from reconciler.model import format_bytes
from reconciler.secrets import redact_text

FORMAT_VERSION = 1


def render_status_json(report: HealthReport, exit_code: int) -> str:
    """The report as JSON; `exit_code` is the command's (the CLI decides it), recorded for machines."""
    counts = report.counts()
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "level": report.level.value,
        "exit_code": int(exit_code),
        "summary": {
            **{lv.value: counts[lv] for lv in Level},
            "unreachable": len(report.unreachable),
        },
        "thresholds": report.thresholds.model_dump(mode="json"),
        "release": _release(report),
        "nodes": [n.model_dump(mode="json") for n in report.nodes],
        "edges": [e.model_dump(mode="json") for e in report.edges],
        "slots": [s.model_dump(mode="json") for s in report.slots],
        "apps": [a.model_dump(mode="json") for a in report.apps],
        "freshness": [f.model_dump(mode="json") for f in report.freshness],
    }
    # Reasons quote libpq's messages, which may quote a DSN.
    return redact_text(json.dumps(document, indent=2, sort_keys=True)) + "\n"


def _release(report: HealthReport) -> dict[str, Any] | None:
    """How far the desired state's newest migration reached, for machines; None without migrations."""
    if report.desired_migration is None:
        return None
    desired = report.desired_migration
    at_release = [n for n in report.nodes if n.schema_migration is not None and n.schema_migration >= desired]
    return {
        "migration": report.desired_migration,
        "nodes": len(report.nodes),
        "at_release": len(at_release),
        "summary": report.release,
    }


def _tag(level: Level) -> str:
    return level.value.upper().ljust(4)


def _findings(findings: tuple[Finding, ...]) -> list[str]:
    return [f"          {f.level.value.upper()}: {f.message}" for f in findings]


def _bytes(value: int | None) -> str:
    return "?" if value is None else format_bytes(value)


def _seconds(value: float | None) -> str:
    return "?" if value is None else format_seconds(value)


def render_status_text(report: HealthReport) -> str:
    lines = ["Nodes:"]
    for n in report.nodes:
        if not n.reachable:
            lines.append(f"  {_tag(n.level)}  {n.node} ({n.level_name}): unreachable: {n.reason}")
            continue
        versions = (
            f"PostgreSQL {(n.server_version or '?').split(' ')[0]}, pglogical {n.pglogical_version or '-'}"
        )
        applied = "never applied"
        if n.last_apply is not None:
            a = n.last_apply
            commit = (a.desired_commit or "no commit")[:12]
            applied = f"last apply {a.applied_at:%Y-%m-%d %H:%M:%S%z} by {a.os_user} ({a.result}, {commit})"
        drift = "" if n.drift is None else f", drift: {n.drift} change(s)"
        lines.append(f"  {_tag(n.level)}  {n.node} ({n.level_name}): {versions}; {applied}{drift}")
        lines.extend(_findings(n.findings))
    lines.append("")
    lines.append("Edges (subscriber <- provider):")
    for e in report.edges:
        active = "" if e.slot_active is None else (", slot active" if e.slot_active else ", slot inactive")
        lines.append(
            f"  {_tag(e.level)}  {e.subscriber} <- {e.provider}: {e.status}, "
            f"lag {_bytes(e.lag_bytes)} / {_seconds(e.lag_seconds)}{active}"
        )
        lines.extend(_findings(e.findings))
        if e.cause is not None:
            down = "" if e.down_seconds is None else f" (down {format_seconds(e.down_seconds)})"
            lines.append(f"          cause: {e.cause}{down}: {e.reason}")
            lines.append(f"          remedy: {e.remedy}")
    lines.append("")
    lines.append("Slots (per provider):")
    if not report.slots:
        lines.append("  (none)")
    for s in report.slots:
        owner = "orphan" if s.orphan else f"for {s.subscription}"
        safe = "" if s.safe_wal_size is None else f", safe_wal_size {format_bytes(s.safe_wal_size)}"
        lines.append(
            f"  {_tag(s.level)}  {s.node}: {s.slot} ({owner}): retains {_bytes(s.retained_bytes)}, "
            f"wal_status {s.wal_status or '?'}{safe}, {'active' if s.active else 'inactive'}"
        )
        lines.extend(_findings(s.findings))
    if report.apps:
        lines.append("")
        lines.append("Applications (app_url):")
    for app in report.apps:
        answer = "no HTTP answer" if app.http_status is None else f"HTTP {app.http_status}"
        lines.append(
            f"  {_tag(app.level)}  {app.node}: {app.url}: {'up' if app.up else 'DOWN'}, {answer},"
            f" {app.seconds * 1000:.0f} ms"
        )
        lines.extend(_findings(app.findings))
    if report.freshness:
        lines.append("")
        lines.append("Freshness (heartbeat, newest beat of each leaf):")
    for f in report.freshness:
        age = "not read" if f.seconds is None and not f.findings else _seconds(f.seconds)
        lines.append(f"  {_tag(f.level)}  {f.source} as seen at {f.observer}: {age}")
        lines.extend(_findings(f.findings))
    counts = report.counts()
    t = report.thresholds
    lines.append("")
    lines.append(
        f"Thresholds: lag {format_seconds(t.max_lag_seconds)} / {format_bytes(t.max_lag_bytes)}, "
        f"retained WAL {format_bytes(t.max_retained_wal)}; WARN at {t.warn_fraction:g} of each."
    )
    if report.release is not None:
        lines.append(f"Schema: {report.release}.")
    lines.append(
        f"Status: {report.level.value.upper()}: {counts[Level.CRIT]} crit, {counts[Level.WARN]} warn, "
        f"{counts[Level.OK]} ok, {len(report.unreachable)} unreachable."
    )
    return redact_text("\n".join(lines)) + "\n"
