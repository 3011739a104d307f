"""Pure: which tables, on which subscribers, an apply may have left without rows they should hold.

An action whose data movement is RESYNC_NEEDED changed what a subscriber
receives without copying what it already should have: a subscription
created or replaced without a copy (the subscriber held older rows, a COPY
would fail on their keys), sets added to a subscription, a table added again
where it is marked synced, a table's filter or columns replaced. Apply ends
by verifying and repairing exactly those tables on exactly those subscribers,
and on the tiers above them (the repaired rows travel on up).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import assert_never

from reconciler.actions import (
    Action,
    AddTable,
    AlterSet,
    AlterSubscription,
    ChangeNodeDsn,
    CreateHeartbeat,
    CreateNode,
    CreateSet,
    CreateSubscription,
    DataMovement,
    DropNode,
    DropSet,
    DropSlot,
    DropSubscription,
    RefreshSubscription,
    RemoveTable,
    ReplaceSubscription,
    ReplaceTable,
    RestartSubscription,
    RunMigration,
    SetReplicaIdentity,
    SetWalKeepSize,
    SwitchSubscription,
)
from reconciler.heartbeat import HEARTBEAT_TABLE
from reconciler.model import DesiredState
from reconciler.topology import edges


@dataclass(frozen=True)
class RowScope:
    """Subscriber -> the declared tables to verify there, and the actions that put them in scope."""

    tables: dict[str, frozenset[str]] = field(default_factory=dict)
    because: tuple[str, ...] = ()


def _set_tables(state: DesiredState, sets: Iterable[str]) -> set[str]:
    return {t for s in sets if s in state.replication_sets for t in state.replication_sets[s].tables}


def affected(state: DesiredState, action: Action) -> dict[str, set[str]]:
    """Subscriber -> tables for one action (empty when it leaves no rows behind)."""
    if action.data_movement is not DataMovement.RESYNC_NEEDED:
        return {}
    match action:
        case CreateSubscription():
            return {action.node: _set_tables(state, action.subscription.replication_sets)}
        case ReplaceSubscription():
            return {action.node: _set_tables(state, action.after.replication_sets)}
        case AlterSubscription():
            added = set(action.after.replication_sets) - set(action.before.replication_sets)
            return {action.node: _set_tables(state, added)}
        case AddTable() | ReplaceTable():
            if action.table == HEARTBEAT_TABLE:
                return {}  # the tool's own rows: the next beat rewrites them, verify leaves them out
            # Every declared subscriber of this provider that takes the set.
            return {
                e.subscriber: {action.table}
                for e in edges(state)
                if e.provider == action.node and action.set_name in e.sets
            }
        case (
            SetWalKeepSize()
            | CreateNode()
            | ChangeNodeDsn()
            | DropNode()
            | CreateSet()
            | AlterSet()
            | DropSet()
            | RemoveTable()
            | DropSubscription()
            | DropSlot()
            | SetReplicaIdentity()
            | SwitchSubscription()
            | RefreshSubscription()
            | RestartSubscription()
            | RunMigration()
            | CreateHeartbeat()
        ):
            return {}
        case _:
            assert_never(action)


def owed(state: DesiredState, action: Action) -> dict[str, set[str]]:
    """Declared subscriber -> tables `action` may leave wrong (pending_rows.py records them): rows
    it owes, or, for the old parent of a moved node, the moved node's history it still holds."""
    found = {s: t for s, t in affected(state, action).items() if s in state.nodes and t}
    found.update(_moved_away(state, action))
    return found


def _moved_away(state: DesiredState, action: Action) -> dict[str, set[str]]:
    """The old parent's drop of its subscription to a node that moved: every declared table there."""
    if isinstance(action, DropSubscription) and action.node in state.nodes:
        moved = state.nodes.get(action.provider_node)
        if moved is not None and moved.upstream not in (None, action.node):
            return {action.node: {t for s in state.replication_sets.values() for t in s.tables}}
    return {}


def row_scope(
    state: DesiredState, done: Iterable[Action], pending: Mapping[str, Iterable[str]] | None = None
) -> RowScope:
    """The tables to verify on each subscriber after `done` ran; only declared subscribers and tables.

    `pending`: tables subscribers still owe rows of from an earlier apply (the plan's pending_rows).
    """
    tables: dict[str, set[str]] = {}
    because: list[str] = []
    declared = {t for s in state.replication_sets.values() for t in s.tables}
    for subscriber, names in sorted((pending or {}).items()):
        still = {t for t in names if t in declared}
        if subscriber in state.nodes and still:
            because.append(
                f"{subscriber}: rows still owed since an earlier apply ({', '.join(sorted(still))})"
            )
            tables.setdefault(subscriber, set()).update(still)
    for action in done:
        owing = {s: t for s, t in affected(state, action).items() if s in state.nodes and t}
        if not owing:
            continue
        because.append(f"{action.node}: {action.symbol} {action.describe()}")
        for subscriber, names in owing.items():
            tables.setdefault(subscriber, set()).update(names)
    # Rows a repair writes at a subscriber replicate on up its chain: the tiers
    # above are checked too (lowest first, after their slots caught up).
    for subscriber in list(tables):
        above = state.nodes[subscriber].upstream
        while above is not None and above in state.nodes:
            tables.setdefault(above, set()).update(tables[subscriber])
            above = state.nodes[above].upstream
    # A node that moved to another parent left its history at the old one: the
    # old parent is checked too, and its moved rows are removed there by a
    # delete that does not replicate (verify/prune.py), so a full verify is clean.
    for action in done:
        if not isinstance(action, DropSubscription):
            continue
        for old_parent, names in _moved_away(state, action).items():
            new_parent = state.nodes[action.provider_node].upstream
            because.append(f"{old_parent}: {action.provider_node} moved to {new_parent}")
            tables.setdefault(old_parent, set()).update(names)
    return RowScope(
        tables={s: frozenset(t) for s, t in sorted(tables.items())},
        because=tuple(because),
    )
