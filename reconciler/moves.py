"""Pure: the planned actions that together move a node to another parent (or retire it), grouped.

A move is no action of its own: when a node's `upstream` changes, the diff
yields the old parent's drop of its subscription to the node, the new
parent's creation of one, and, when a parent's children change from none to
some (or back), the replace of the tier above's subscription to it
(forward_origins {all} <-> {}). Grouping them lets the plan say what the
operator did ("move district_b: region_east -> region_west") and list its
steps in the order apply runs them; apply itself walks the same actions.

Apply makes the move gap-free this way (README "Changing the network"):
the old path goes first (never two paths up: the tier above would get each
new row twice), the new subscription starts streaming, the rows written in
between and the node's history reach the new parent by the tool's keyed,
filtered repair (verify/repair.py), and the old parent's copy of the node's
rows is removed there by a delete that does not replicate (verify/prune.py).

A node removed from the desired state is retired: its parent drops its
subscription to it (pglogical drops the slot on the retired node over the
subscription's DSN, so it holds no WAL for it), and its rows stay at the
parent and every tier above: apply never deletes. `reconcile verify` then
reports them at the parent as stale rows, and `verify --repair` withdraws
them from every tier (a delete at the parent replicates up).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from reconciler.actions import Action, CreateSubscription, DropSubscription, ReplaceSubscription


@dataclass(frozen=True)
class Move:
    """`node` leaves `old` for `new`; `steps` index the plan's actions, in plan order."""

    node: str
    old: str
    new: str
    steps: tuple[int, ...]

    def describe(self) -> str:
        return f"move {self.node}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class Retirement:
    """`node`, no longer declared, is let go by `parent`: `steps` index the plan's actions."""

    node: str
    parent: str
    steps: tuple[int, ...]

    def describe(self) -> str:
        return f"retire {self.node}: no longer declared, {self.parent} lets it go"


def retirements(actions: Sequence[Action], declared: Collection[str]) -> list[Retirement]:
    """Drops of subscriptions to a provider that is not a declared node (none when none is known)."""
    if not declared:
        return []  # a plan saved before plans named their declared nodes: nothing is guessed
    found = [
        Retirement(node=a.provider_node, parent=a.node, steps=(i,))
        for i, a in enumerate(actions)
        if isinstance(a, DropSubscription) and a.provider_node not in declared
    ]
    return sorted(found, key=lambda r: (r.node, r.parent))


def _new_provider(action: Action) -> str | None:
    if isinstance(action, CreateSubscription):
        return action.subscription.provider_node
    if isinstance(action, ReplaceSubscription) and action.before.provider_node != action.after.provider_node:
        return action.after.provider_node
    return None


def moves(actions: Sequence[Action]) -> list[Move]:
    """Every move the actions make, sorted by node; an action belongs to at most one move."""
    dropped = {a.provider_node: (i, a.node) for i, a in enumerate(actions) if isinstance(a, DropSubscription)}
    found: list[Move] = []
    for index, action in enumerate(actions):
        node = _new_provider(action)
        if node is None or node not in dropped or dropped[node][1] == action.node:
            continue
        drop, old = dropped[node]
        parents = {old, action.node}
        # The tier above re-subscribes to a parent whose forward_origins change
        # because it gains its first child or loses its last one.
        tier_above = [
            i
            for i, a in enumerate(actions)
            if isinstance(a, ReplaceSubscription)
            and a.after.provider_node in parents
            and a.before.provider_node == a.after.provider_node
            and sorted(a.before.forward_origins) != sorted(a.after.forward_origins)
        ]
        steps = tuple(sorted({drop, index, *tier_above}))
        found.append(Move(node=node, old=old, new=action.node, steps=steps))
    return sorted(found, key=lambda m: m.node)
