"""Pure simulator: applies actions to in-memory NodeCatalogs the way pglogical would, refusing
what pglogical refuses (or what would leave a subscription `down`), so that property tests can
check both the diff (result equals desired) and the order (no step runs before its needs)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.actions import (
    Action,
    AddTable,
    AlterSet,
    AlterSubscription,
    ChangeNodeDsn,
    CreateNode,
    CreateSet,
    CreateSubscription,
    DropNode,
    DropSet,
    DropSlot,
    DropSubscription,
    RemoveTable,
    ReplaceSubscription,
    ReplaceTable,
    SetWalKeepSize,
)
from reconciler.model import NodeCatalog, Subscription


class SimulationError(AssertionError):
    """An action that pglogical would refuse, or that breaks a subscription, at this point."""


def simulate(
    catalogs: Mapping[str, NodeCatalog], actions: Iterable[Action]
) -> dict[str, NodeCatalog]:
    """The catalogs after running `actions` in the order given."""
    state = dict(catalogs)
    for action in actions:
        state[action.node] = _apply(state, action)
    return state


def _provider(state: Mapping[str, NodeCatalog], node_name: str) -> NodeCatalog | None:
    for catalog in state.values():
        if catalog.node_name == node_name:
            return catalog
    return None


def _check_provider_sets(state: Mapping[str, NodeCatalog], sub: Subscription) -> None:
    provider = _provider(state, sub.provider_node)
    if provider is None:
        raise SimulationError(f"subscription {sub.name}: provider {sub.provider_node} missing")
    missing = set(sub.replication_sets) - set(provider.sets)
    if missing:
        raise SimulationError(
            f"subscription {sub.name}: provider {sub.provider_node} lacks sets {sorted(missing)}"
        )


def _subscribers(
    state: Mapping[str, NodeCatalog], provider: str | None, set_name: str
) -> list[str]:
    return [
        sub.name
        for catalog in state.values()
        for sub in catalog.subscriptions.values()
        if sub.provider_node == provider and set_name in sub.replication_sets
    ]


def _apply(state: Mapping[str, NodeCatalog], action: Action) -> NodeCatalog:
    cat = state[action.node]
    sets = dict(cat.sets)
    subs = dict(cat.subscriptions)

    def need_node() -> None:
        if cat.node_name is None:
            raise SimulationError(f"{action.kind} on {action.node}: no pglogical node")

    match action:
        case CreateNode():
            if cat.node_name is not None:
                raise SimulationError(f"{action.node}: one local node per database")
            return cat.model_copy(update={"node_name": action.name, "dsn": action.dsn})
        case ChangeNodeDsn():
            need_node()
            return cat.model_copy(update={"dsn": action.after})
        case DropNode():
            if cat.node_name != action.name:
                raise SimulationError(f"{action.node}: node {action.name} is not here")
            if cat.subscriptions:
                raise SimulationError(f"{action.node}: drop_node with subscriptions")
            for other in state.values():
                for sub in other.subscriptions.values():
                    if sub.provider_node == action.name:
                        raise SimulationError(f"{action.node}: slot of {sub.name} still active")
            # drop_node drops the node's sets (with tables) and its pgl_* slots.
            return NodeCatalog()
        case CreateSet():
            need_node()
            if action.set.name in sets:
                raise SimulationError(f"{action.node}: set {action.set.name} exists")
            if action.set.tables:
                raise SimulationError("CreateSet carries flags only")
            sets[action.set.name] = action.set
        case AlterSet():
            if action.name not in sets:
                raise SimulationError(f"{action.node}: alter of missing set {action.name}")
            sets[action.name] = action.after.model_copy(
                update={"tables": sets[action.name].tables}
            )
        case DropSet():
            if action.name not in sets:
                raise SimulationError(f"{action.node}: drop of missing set {action.name}")
            users = _subscribers(state, cat.node_name, action.name)
            if users:
                raise SimulationError(f"{action.node}: set {action.name} dropped while {users} use it")
            del sets[action.name]
        case AddTable() | ReplaceTable() | RemoveTable():
            if action.set_name not in sets:
                raise SimulationError(f"{action.node}: set {action.set_name} missing")
            tables = dict(sets[action.set_name].tables)
            present = action.table in tables
            if isinstance(action, AddTable):
                if present:
                    raise SimulationError(f"{action.node}: {action.table} already in set")
                if not action.synchronize_data and _subscribers(state, cat.node_name, action.set_name):
                    # A running subscription copies only the tables its set held
                    # when it started: rows of this one would never arrive.
                    raise SimulationError(
                        f"{action.node}: {action.table} added to {action.set_name} without copy"
                        " while subscribed"
                    )
                tables[action.table] = action.spec
            elif not present:
                raise SimulationError(f"{action.node}: {action.table} not in set")
            elif isinstance(action, ReplaceTable):
                if tables[action.table] != action.before:
                    raise SimulationError(f"{action.node}: {action.table} before differs")
                tables[action.table] = action.after
            else:
                del tables[action.table]
            sets[action.set_name] = sets[action.set_name].model_copy(update={"tables": tables})
        case CreateSubscription():
            need_node()
            sub = action.subscription
            if sub.name in subs:
                raise SimulationError(f"{action.node}: subscription {sub.name} exists")
            _check_provider_sets(state, sub)
            subs[sub.name] = sub
        case AlterSubscription() | ReplaceSubscription():
            if subs.get(action.before.name) != action.before:
                raise SimulationError(f"{action.node}: {action.before.name} is not as planned")
            _check_provider_sets(state, action.after)
            subs[action.after.name] = action.after
        case DropSubscription():
            if action.name not in subs:
                raise SimulationError(f"{action.node}: drop of missing {action.name}")
            del subs[action.name]
        case SetWalKeepSize():
            return cat  # a server setting: not part of the catalog
        case DropSlot():
            if action.slot not in cat.orphan_slots:
                raise SimulationError(f"{action.node}: slot {action.slot} missing")
            slots = tuple(s for s in cat.orphan_slots if s != action.slot)
            return cat.model_copy(update={"orphan_slots": slots})
    return cat.model_copy(update={"sets": sets, "subscriptions": subs})
