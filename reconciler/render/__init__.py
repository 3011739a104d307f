"""Every output of reconcile as a string, never printed here; this module: what plan renderers share.

One module per output: plan_text, plan_json, plan_markdown, stats (plan),
apply (apply report), status and prometheus, graph, topology, verify, and
review_markdown, review_json, review_mermaid, review_sentences (review);
markup escapes Markdown. Shared here: data-movement labels, the summary line.
"""

from __future__ import annotations

from reconciler.actions import Action, DataMovement

# What each kind of data movement means to an operator, as a short label.
MOVEMENT_LABELS: dict[DataMovement, str] = {
    DataMovement.NONE: "",
    DataMovement.INITIAL_COPY: "initial copy",
    DataMovement.RESYNC_NEEDED: "needs verify",
    DataMovement.SLOT_DROPPED: "slot dropped: WAL released",
}


def labels(action: Action) -> list[str]:
    """Bracketed labels for one action: data movement first, then destructive."""
    result = []
    movement = MOVEMENT_LABELS[action.data_movement]
    if movement:
        result.append(movement)
    if action.destructive:
        result.append("destructive")
    return result


def summary_line(to_add: int, to_change: int, to_destroy: int) -> str:
    return f"Plan: {to_add} to add, {to_change} to change, {to_destroy} to destroy."


NO_CHANGES = "No changes. Live state matches the desired state."
