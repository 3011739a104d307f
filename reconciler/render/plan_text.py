"""Terraform-like text rendering of a plan: per node, symbols, data-movement labels, summary."""

from __future__ import annotations

from reconciler.actions import DataMovement
from reconciler.moves import moves, retirements
from reconciler.plan import Plan
from reconciler.render import NO_CHANGES, labels, summary_line
from reconciler.secrets import redact_text


def render_text(plan: Plan) -> str:
    """The plan for a terminal; the same plan always gives the same bytes."""
    lines: list[str] = []
    if plan.actions:
        lines.append("reconcile will perform the following actions")
        lines.append("(run in dependency order across nodes; listed here per node):")
        for node, actions in plan.by_node().items():
            lines.append("")
            lines.append(f"node {node}:")
            for action in actions:
                tags = "".join(f" [{label}]" for label in labels(action))
                lines.append(f"{action.symbol:>3} {action.describe()}{tags}")
        lines.extend(_moves(plan))

    blockers = plan.sorted_blockers()
    if blockers:
        lines.append("")
        for blocker in blockers:
            where = f"node {blocker.node}" + (f", table {blocker.table}" if blocker.table else "")
            lines.append(f"Error: {where}: {redact_text(blocker.message)}")

    if plan.unreachable:
        lines.append("")
        count = len(plan.unreachable)
        lines.append(f"Not planned: {count} node{'s' if count != 1 else ''} did not answer:")
        for node, reason in sorted(plan.unreachable.items()):
            lines.append(f"  {node}: {redact_text(reason)}")

    migrations = _migrations(plan)
    if migrations:
        lines.append("")
        lines.extend(migrations)

    pending = _pending(plan)
    if pending:
        lines.append("")
        lines.extend(pending)

    if not plan.actions and not blockers and not plan.unreachable and not migrations and not pending:
        return NO_CHANGES + "\n" + "".join(line + "\n" for line in _unsettled(plan))

    notes = _notes(plan)
    if notes:
        lines.append("")
        lines.extend(notes)
    lines.append("")
    s = plan.summary
    lines.append(summary_line(s.to_add, s.to_change, s.to_destroy))
    return "\n".join(lines).lstrip("\n") + "\n"


def _migrations(plan: Plan) -> list[str]:
    """Migrations that wait (and on what), and migrations a node ran that the desired state lacks."""
    lines = [f"Waiting: node {node}: {reason}" for node, reason in sorted(plan.migrations_waiting.items())]
    lines += [
        f"Drift: node {node} ran migration(s) the desired state does not know: {', '.join(names)}"
        for node, names in sorted(plan.migrations_unknown.items())
    ]
    return lines


def _moves(plan: Plan) -> list[str]:
    """Each move as one operation: its steps (actions listed above) in the order apply runs them."""
    lines: list[str] = []
    for move in moves(plan.actions):
        lines += ["", f"{move.describe()}:"]
        for step, index in enumerate(move.steps, 1):
            action = plan.actions[index]
            lines.append(f"  {step}. {action.node}: {action.symbol} {action.describe()}")
        lines.append(
            f"  then: {move.node}'s rows verified and repaired at {move.new} and the tiers above;"
            f" {move.old}'s copy of them removed at {move.old} only (never a delete the tiers above receive)"
        )
    for retired in retirements(plan.actions, plan.declared):
        action = plan.actions[retired.steps[0]]
        lines += ["", f"{retired.describe()}:"]
        lines.append(f"  1. {action.node}: {action.symbol} {action.describe()} (its slot on it goes too)")
        lines.append(
            f"  its rows stay at {retired.parent} and the tiers above; `reconcile verify` reports them at"
            f" {retired.parent} as stale, `reconcile verify --repair` withdraws them from every tier"
        )
    return lines


def _pending(plan: Plan) -> list[str]:
    """Rows an earlier apply's repair left owed (reconcile.pending_rows): the next apply repairs them."""
    if not plan.pending_rows:
        return []
    lines = ["Rows still owed (an earlier apply did not finish its repair): apply verifies and repairs them:"]
    lines += [f"  {node}: {', '.join(tables)}" for node, tables in sorted(plan.pending_rows.items())]
    return lines


def _unsettled(plan: Plan) -> list[str]:
    """Nodes whose newest apply record is not ok: said, since `status` warns about them."""
    if not plan.unsettled:
        return []
    which = ", ".join(f"{node} ({result})" for node, result in sorted(plan.unsettled.items()))
    return [f"Note: the last apply did not complete on {which}; the next apply records ok there."]


def _notes(plan: Plan) -> list[str]:
    notes = _unsettled(plan)
    edges = sorted({(b.provider, b.node) for b in plan.blockers if b.provider is not None})
    if edges and all(b.provider is not None for b in plan.blockers):
        names = ", ".join(f"{p} -> {s}" for p, s in edges)
        notes.append(f"Note: apply holds back the actions of edge(s) {names} and applies the rest.")
    verify = sum(1 for a in plan.actions if a.data_movement is DataMovement.RESYNC_NEEDED)
    if verify:
        notes.append(
            f"Note: {verify} action(s) marked [needs verify] change which rows a subscriber"
            " should hold without copying them; apply verifies and repairs those tables"
            " at the end (unless --no-repair)."
        )
    destroys = len(plan.destroys)
    if destroys:
        notes.append(
            f"Note: {destroys} destructive action(s) run only with `reconcile apply --allow-destroy`."
        )
    return notes
