"""Markdown rendering of a plan for merge requests: summary, actions per node, warnings."""

from __future__ import annotations

from reconciler.actions import DataMovement
from reconciler.moves import moves, retirements
from reconciler.plan import Plan
from reconciler.render import MOVEMENT_LABELS, NO_CHANGES, summary_line
from reconciler.render.markup import cell, code
from reconciler.secrets import redact_text

_MOVEMENT_WARNINGS = {
    DataMovement.INITIAL_COPY: "subscribers copy the provider's filtered rows (load on both ends)",
    DataMovement.RESYNC_NEEDED: (
        "rows a subscriber should hold change without being copied or removed: "
        "run `reconcile verify` after apply"
    ),
    DataMovement.SLOT_DROPPED: (
        "a replication slot goes: its retained WAL is released and changes not yet "
        "received are lost to that subscriber"
    ),
}


def render_markdown(plan: Plan) -> str:
    lines = ["### reconcile plan", ""]
    s = plan.summary
    meta = f"tool {plan.tool_version}"
    if plan.desired_commit:
        meta += f", desired state at {code(plan.desired_commit[:12])}"
    if plan.actions or plan.blockers or plan.unreachable:
        lines.append(f"**{summary_line(s.to_add, s.to_change, s.to_destroy)}** ({meta})")
    else:
        lines.append(f"**{NO_CHANGES}** ({meta})")

    blockers = plan.sorted_blockers()
    if blockers:
        lines += ["", "#### :no_entry: Blocking errors (apply will refuse)", ""]
        for b in blockers:
            where = f"node {code(b.node)}" + (f", table {code(b.table)}" if b.table else "")
            lines.append(f"- {where}: {cell(redact_text(b.message))}")

    if plan.unreachable:
        lines += ["", "#### :warning: Unreachable nodes (not planned)", ""]
        lines += ["| node | reason |", "|---|---|"]
        for node, reason in sorted(plan.unreachable.items()):
            lines.append(f"| {code(node)} | {cell(redact_text(reason))} |")

    for node, actions in plan.by_node().items():
        lines += ["", f"#### node {code(node)}", ""]
        lines += ["| | action | data movement | destructive |", "|---|---|---|---|"]
        for a in actions:
            movement = MOVEMENT_LABELS[a.data_movement] or "-"
            lines.append(
                f"| {code(a.symbol)} {a.change.value} | {cell(a.describe())} "
                f"| {movement} | {'**yes**' if a.destructive else 'no'} |"
            )

    for move in moves(plan.actions):
        lines += ["", f"#### {cell(move.describe())}", ""]
        for step, index in enumerate(move.steps, 1):
            a = plan.actions[index]
            lines.append(f"{step}. {code(a.node)}: {code(a.symbol)} {cell(a.describe())}")
        lines.append(
            f"{len(move.steps) + 1}. apply verifies and repairs {code(move.node)}'s rows at {code(move.new)}"
            f" and above, and removes {code(move.old)}'s copy of them there only"
        )

    for retired in retirements(plan.actions, plan.declared):
        lines += ["", f"#### {cell(retired.describe())}", ""]
        lines.append(
            f"Its rows **stay** at {code(retired.parent)} and the tiers above; `reconcile verify --repair`"
            " withdraws them from every tier."
        )

    moving = [a for a in plan.actions if a.data_movement is not DataMovement.NONE]
    if moving:
        lines += ["", "#### :warning: Data movement", ""]
        for a in moving:
            warning = _MOVEMENT_WARNINGS[a.data_movement]
            lines.append(f"- {code(a.node)}: {cell(a.describe())}: {warning}")
    if plan.destroys:
        lines += [
            "",
            f"{len(plan.destroys)} destructive action(s) run only with `reconcile apply --allow-destroy`.",
        ]
    return "\n".join(lines) + "\n"
