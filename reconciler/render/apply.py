"""What `reconcile apply` reports after running: counts per outcome, what failed, what is still different."""

from __future__ import annotations

from reconciler.apply import ApplyReport, Status
from reconciler.plan import Plan


def render_apply_report(report: ApplyReport) -> str:
    """The report that follows the progress lines; starts with a blank line."""
    done = [o for o in report.outcomes if o.status is Status.DONE]
    failed = [o for o in report.outcomes if o.status is Status.FAILED]
    skipped = [o for o in report.outcomes if o.status is Status.NOT_ATTEMPTED]
    held = [o for o in report.outcomes if o.status is Status.HELD_BACK]
    counts = f"{len(done)} done, {len(failed)} failed, {len(skipped)} not attempted, {len(held)} held back"
    lines = ["", f"Apply: {counts}."]
    for o in failed:
        lines.append(f"  failed:        {o.action.node}: {o.action.symbol} {o.action.describe()}: {o.detail}")
    for o in skipped:
        lines.append(f"  not attempted: {o.action.node}: {o.action.symbol} {o.action.describe()}")
    for o in held:
        lines.append(
            f"  held back (needs --allow-destroy): {o.action.node}: {o.action.symbol} {o.action.describe()}"
        )
    for node, reason in sorted(report.unreachable_after.items()):
        lines.append(f"  could not re-read {node}: {reason}")
    if report.converged:
        lines.append("converged" + (" (except what was held back)" if held else ""))
    else:
        lines.append("Still different after apply:")
        for action in report.remaining:
            lines.append(f"  {action.node}: {action.symbol} {action.describe()}")
        if report.failed:
            lines.append(
                "Rerun `reconcile apply` once the cause is fixed: it converges from where this stopped."
            )
    return "\n".join(lines) + "\n"


def render_unplanned(plan: Plan) -> str:
    """Said after an apply whose plan left out nodes that did not answer."""
    nodes = ", ".join(sorted(plan.unreachable))
    return f"Not converged: unreachable node(s) were not planned: {nodes}\n"
