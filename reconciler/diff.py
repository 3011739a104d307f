"""Pure diff: desired x live per-node catalogs -> typed actions, ordered by plan.order; no I/O."""

from __future__ import annotations

from collections.abc import Collection, Mapping

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
    SetReplicaIdentity,
    SwitchSubscription,
)
from reconciler.model import NodeCatalog, ReplicationSet, Subscription
from reconciler.plan import order


def diff(desired: Mapping[str, NodeCatalog], live: Mapping[str, NodeCatalog]) -> list[Action]:
    """Every action that makes `live` equal `desired`, over the nodes present in both, in order."""
    asked: dict[str, set[str]] = {}
    for catalog in live.values():
        for sub in catalog.subscriptions.values():
            asked.setdefault(sub.provider_node, set()).update(sub.replication_sets)
    actions: list[Action] = []
    for node in sorted(set(desired) & set(live)):
        actions.extend(diff_node(node, desired[node], live[node], subscribed_sets=asked.get(node, ())))
    return order(actions)


def diff_node(
    node: str,
    desired: NodeCatalog,
    live: NodeCatalog,
    *,
    subscribed_sets: Collection[str] = (),
) -> list[Action]:
    """Actions on one node (unordered across kinds; `diff` orders globally).

    `subscribed_sets`: sets of this node that live subscriptions elsewhere
    already ask for; tables added to them must be copied even when the set is new.
    """
    actions: list[Action] = []
    # Orphaned slots keep WAL on this provider forever; drop_node would also
    # drop them, but an explicit action shows the WAL release in the plan.
    actions.extend(DropSlot(node=node, slot=slot) for slot in sorted(set(live.orphan_slots)))

    if desired.node_name is None:
        pass  # native engine: publications and subscriptions need no node object
    elif live.node_name is None:
        actions.append(CreateNode(node=node, name=node, dsn=desired.dsn or ""))
        live = NodeCatalog()
    elif live.node_name != node:
        # One local pglogical node per database: the other one must go, with
        # its subscriptions first (drop_node refuses while it has any). Its
        # sets and tables go with the node, so they get no actions of their own.
        actions.extend(
            DropSubscription(node=node, name=sub.name, provider_node=sub.provider_node)
            for _, sub in sorted(live.subscriptions.items())
        )
        actions.append(DropNode(node=node, name=live.node_name))
        actions.append(CreateNode(node=node, name=node, dsn=desired.dsn or ""))
        live = NodeCatalog()
    elif desired.dsn is not None and live.dsn != desired.dsn:
        actions.append(ChangeNodeDsn(node=node, name=node, before=live.dsn or "", after=desired.dsn))

    actions.extend(_diff_sets(node, desired.sets, live.sets, frozenset(subscribed_sets)))
    actions.extend(
        SetReplicaIdentity(
            node=node, table=table, before=live.replica_identities.get(table, "unknown"), after=want
        )
        for table, want in sorted(desired.replica_identities.items())
        if live.replica_identities.get(table) != want
    )
    actions.extend(_diff_legacy(node, desired.subscriptions, live.legacy_subscriptions))
    actions.extend(
        _diff_subscriptions(
            node,
            {n: s for n, s in desired.subscriptions.items() if n not in live.legacy_subscriptions},
            # A half-done switch: the native one exists already; the switch completes it.
            {n: s for n, s in live.subscriptions.items() if n not in live.legacy_subscriptions},
        )
    )
    return actions


def _flags_only(s: ReplicationSet) -> ReplicationSet:
    """The set without its tables: set actions carry flags, tables have actions of their own."""
    return s.model_copy(update={"tables": {}})


def _same_flags(a: ReplicationSet, b: ReplicationSet) -> bool:
    return a.operations() == b.operations()


def _diff_sets(
    node: str,
    desired: Mapping[str, ReplicationSet],
    live: Mapping[str, ReplicationSet],
    subscribed: frozenset[str],
) -> list[Action]:
    actions: list[Action] = []
    for name in sorted(set(desired) | set(live)):
        want, have = desired.get(name), live.get(name)
        if want is None:
            # drop_replication_set takes its tables with it: no RemoveTable.
            actions.append(DropSet(node=node, name=name))
            continue
        if have is None:
            actions.append(CreateSet(node=node, set=_flags_only(want)))
            # A brand-new set usually has no subscriber yet: the subscription's
            # initial copy brings the rows, and a copy queued by add_table would
            # only race it. But a subscription that already asks for the set (it
            # was dropped by hand) never copies tables added after it started.
            actions.extend(
                AddTable(
                    node=node,
                    set_name=name,
                    table=t,
                    spec=spec,
                    synchronize_data=name in subscribed,
                )
                for t, spec in sorted(want.tables.items())
            )
            continue
        if not _same_flags(want, have):
            actions.append(AlterSet(node=node, name=name, before=_flags_only(have), after=_flags_only(want)))
        for table in sorted(set(want.tables) | set(have.tables)):
            want_t, have_t = want.tables.get(table), have.tables.get(table)
            if want_t is None:
                actions.append(RemoveTable(node=node, set_name=name, table=table))
            elif have_t is None:
                # Subscribers already using this set copy the new table's rows.
                actions.append(
                    AddTable(node=node, set_name=name, table=table, spec=want_t, synchronize_data=True)
                )
            elif want_t != have_t:
                actions.append(
                    ReplaceTable(node=node, set_name=name, table=table, before=have_t, after=want_t)
                )
    return actions


def _diff_legacy(
    node: str, desired: Mapping[str, Subscription], legacy: Mapping[str, Subscription]
) -> list[Action]:
    """Native engine: pglogical subscriptions still held; each declared edge is handed over.

    The desired native subscription of the same name is created by the switch
    itself (never by a CreateSubscription, whose initial copy would double
    rows the pglogical one already brought); an undeclared one is dropped.
    """
    actions: list[Action] = []
    for name, old in sorted(legacy.items()):
        want = desired.get(name)
        if want is None:
            actions.append(DropSubscription(node=node, name=name, provider_node=old.provider_node))
        else:
            actions.append(SwitchSubscription(node=node, before=old, after=want))
    return actions


def _diff_subscriptions(
    node: str, desired: Mapping[str, Subscription], live: Mapping[str, Subscription]
) -> list[Action]:
    actions: list[Action] = []
    for name in sorted(set(live) - set(desired)):
        have = live[name]
        actions.append(DropSubscription(node=node, name=name, provider_node=have.provider_node))
    for name, want in sorted(desired.items()):
        found = live.get(name)
        if found is None:
            actions.append(CreateSubscription(node=node, subscription=want))
            continue
        have = found
        if want.provider_node != have.provider_node or sorted(want.forward_origins) != sorted(
            have.forward_origins
        ):
            # pglogical has no function to change either: drop and re-create.
            actions.append(ReplaceSubscription(node=node, before=have, after=want))
        elif (
            sorted(want.replication_sets) != sorted(have.replication_sets)
            or want.provider_dsn != have.provider_dsn
            or want.enabled != have.enabled
        ):
            actions.append(AlterSubscription(node=node, before=have, after=want))
    return actions
