"""What `reconcile apply` reports after running: per node what was done, what failed (once) and what waits."""

from __future__ import annotations

from reconciler.actions import DataMovement
from reconciler.apply import ApplyReport, Outcome, Status
from reconciler.apply.executor import rows_whole, stale_kept
from reconciler.plan import Plan


def _line(o: Outcome) -> str:
    return f"{o.action.symbol} {o.action.describe()}"


def _node_lines(node: str, mine: list[Outcome]) -> list[str]:
    """One node's part: its failure with the reason (once), then what did not run, by why."""
    lines: list[str] = []
    failed = [o for o in mine if o.status is Status.FAILED]
    for o in failed:
        lines.append(f"  {node}: failed: {_line(o)}: {o.detail}")
    here = [o for o in mine if o.status is Status.WAITING and o.waiting_on == node]
    if here:
        lines.append(f"  {node}: not run after that failure: {len(here)} action(s)")
        lines += [f"      {_line(o)}" for o in here]
    elsewhere: dict[str, list[Outcome]] = {}
    for o in mine:
        if o.status is Status.WAITING and o.waiting_on != node:
            elsewhere.setdefault(o.waiting_on or "?", []).append(o)
    for other, waiting in sorted(elsewhere.items()):
        lines.append(f"  {node}: waiting on {other}: {len(waiting)} action(s)")
        lines += [f"      {_line(o)}" for o in waiting]
    interrupted = [o for o in mine if o.status is Status.INTERRUPTED]
    if interrupted:
        lines.append(f"  {node}: not started (interrupted): {len(interrupted)} action(s)")
        lines += [f"      {_line(o)}" for o in interrupted]
    return lines


def _rows_line(report: ApplyReport) -> str:
    """What "converged" covers: the catalogs, and the rows the actions may have left wrong."""
    scope = report.rows.tables
    if not scope:
        return "rows: no action needed a check"
    checked = sum(len(t) for t in scope.values())
    where = f"{checked} table(s) on {len(scope)} subscriber(s)"
    if report.rows_skipped is not None:
        return f"rows: NOT verified ({report.rows_skipped}): run `reconcile verify --repair` for {where}"
    if report.verify is None:
        return f"rows: not verified: {where}"
    repaired = sum(t.repaired.writes for t in report.verify.tables if t.repaired is not None)
    bad = [t for t in report.verify.tables if not rows_whole(t)]
    text = f"rows: verified {where}, {repaired} row(s) repaired"
    if bad:
        text += (
            "; still different: "
            + ", ".join(f"{t.table} at {t.subscriber}" + (f" ({t.reason})" if t.reason else "") for t in bad)
            + " (kept as owed: the next `reconcile apply` resumes the repair)"
        )
    stale = [(t, stale_kept(t)) for t in report.verify.tables if stale_kept(t)]
    if stale:
        text += (
            "; kept rows no provider passes (apply never deletes: a delete replicates upstream): "
            + ", ".join(f"{n} in {t.table} at {t.subscriber}" for t, n in stale)
            + "; `reconcile verify --repair` removes them once you have checked"
        )
    for node, reason in sorted(report.verify.unreachable.items()):
        text += f"; could not verify at {node}: {reason}"
    return text


def render_apply_report(report: ApplyReport) -> str:
    """The report that follows the progress lines; starts with a blank line."""
    count = {s: sum(1 for o in report.outcomes if o.status is s) for s in Status}
    lines = [
        "",
        f"Apply: {count[Status.DONE]} done, {count[Status.FAILED]} failed,"
        f" {count[Status.WAITING]} waiting, {count[Status.INTERRUPTED]} not started,"
        f" {count[Status.HELD_BACK]} held back, {count[Status.BLOCKED]} blocked.",
    ]
    if report.unreachable_at_start:
        lines.append(
            "  unreachable at the start: "
            + "; ".join(f"{n} ({r})" for n, r in sorted(report.unreachable_at_start.items()))
        )
    per_node: dict[str, list[Outcome]] = {}
    for o in report.outcomes:
        per_node.setdefault(o.action.node, []).append(o)
    for node, mine in sorted(per_node.items()):
        lines += _node_lines(node, mine)
    for o in (o for o in report.outcomes if o.status is Status.HELD_BACK):
        lines.append(
            f"  held back (needs --allow-destroy): {o.action.node}: {_line(o)}"
            + (f": {o.detail}" if o.detail else "")
        )
    for o in (o for o in report.outcomes if o.status is Status.BLOCKED):
        lines.append(f"  blocked: {o.action.node}: {_line(o)}: {o.detail}")
    if report.interrupted:
        lines.append(
            "Interrupted: no new action was started. Rerun `reconcile apply`: it converges from here."
        )
        if any(a.data_movement is DataMovement.RESYNC_NEEDED for a in report.done_actions):
            lines.append(
                "  rows: NOT verified (interrupted): the subscribers keep them as owed"
                " (reconcile.pending_rows); the rerun verifies and repairs them"
            )
        return "\n".join(lines) + "\n"
    for node, reason in sorted(report.unreachable_after.items()):
        lines.append(f"  could not re-read {node}: {reason}")
    held = count[Status.HELD_BACK] > 0
    if report.converged:
        lines.append("converged: catalogs and rows" + (" (except what was held back)" if held else ""))
        lines.append("  " + _rows_line(report))
    else:
        if report.catalogs_converged:
            lines.append("catalogs converged; " + _rows_line(report))
        else:
            lines.append("Still different after apply:")
            for action in report.remaining:
                lines.append(f"  {action.node}: {action.symbol} {action.describe()}")
            if report.rows.tables:
                lines.append("  " + _rows_line(report))
        if report.failed:
            lines.append(
                "Rerun `reconcile apply` once the cause is fixed: it converges from where this stopped."
            )
    return "\n".join(lines) + "\n"


def render_unplanned(plan: Plan) -> str:
    """Said after an apply whose plan left out nodes that did not answer."""
    nodes = ", ".join(sorted(plan.unreachable))
    return f"Not converged: unreachable node(s) were not planned: {nodes}\n"
