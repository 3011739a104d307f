"""Pure rules only several nodes show together: lost slots, held drops, copies that cannot run, refresh."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.actions import (
    Action,
    AddTable,
    AlterSubscription,
    CreateSubscription,
    DropSet,
    DropSlot,
    DropSubscription,
    RefreshSubscription,
    ReplaceSubscription,
    SwitchSubscription,
)
from reconciler.diff.desired import Desired
from reconciler.live import LiveNode, SlotStatus

# How a replace's reason says the provider holds no slot for it (apply/executor.py reads it).
SLOT_MISSING = "is missing on"


def broken_subscriptions(desired: Desired, live: Mapping[str, LiveNode]) -> dict[tuple[str, str], str]:
    """(subscriber, subscription) -> why it cannot replicate although its catalog is in sync.

    Only a declared subscription that finished its initial sync and whose
    provider was read counts: its slot must then exist there. A slot that is
    missing (the provider's node was dropped and re-created, or the slot by
    hand) or `lost` (past max_slot_wal_keep_size) cannot be revived in place:
    pglogical needs the subscription dropped and re-created.
    """
    broken: dict[tuple[str, str], str] = {}
    for subscriber, node in sorted(live.items()):
        wanted = desired.nodes[subscriber].catalog.subscriptions if subscriber in desired.nodes else {}
        for name, sub in sorted(node.catalog.subscriptions.items()):
            facts = node.subscriptions.get(name)
            if name not in wanted or facts is None or not facts.synced:
                continue
            provider = live.get(sub.provider_node)
            if provider is None:
                continue  # provider not read (unreachable or not selected): unknown, not guessed
            status = provider.slots.get(facts.slot)
            if status is None:
                broken[(subscriber, name)] = (
                    f"slot {facts.slot} {SLOT_MISSING} {sub.provider_node}: re-copy needed"
                )
            elif status is SlotStatus.LOST:
                broken[(subscriber, name)] = (
                    f"slot {facts.slot} on {sub.provider_node} is lost (past max_slot_wal_keep_size): "
                    "re-copy needed"
                )
    return broken


def synced_at(desired: Desired, live: Mapping[str, LiveNode], action: AddTable) -> tuple[str, ...]:
    """Subscribers of the provider's set that already mark the added table synced.

    pglogical skips a queued table sync for a table its subscription already
    has a sync row for (the table was in the set before and was removed by
    hand): those subscribers will not copy it, whatever add_table asks.
    """
    found: set[str] = set()
    for subscriber, node in live.items():
        kept = desired.nodes[subscriber].catalog.subscriptions if subscriber in desired.nodes else {}
        for name, sub in node.catalog.subscriptions.items():
            facts = node.subscriptions.get(name)
            # pglogical keeps sync rows per subscription: only a subscription
            # the plan keeps decides what arrives (an undeclared one is dropped).
            if (
                name in kept
                and sub.provider_node == action.node
                and action.set_name in sub.replication_sets
                and facts is not None
                and action.table in facts.tables_synced
            ):
                found.add(subscriber)
    return tuple(sorted(found))


def across_nodes(desired: Desired, live: Mapping[str, LiveNode], actions: list[Action]) -> list[Action]:
    """Adjust the per-node actions with what only several nodes together show."""
    # Slots in use, by the database that holds them: a pglogical subscription
    # names its provider's node, which a database may hold under another name.
    holder = {node.catalog.node_name: key for key, node in live.items() if node.catalog.node_name}
    in_use = {(holder.get(p, p), slot) for node in live.values() for p, slot in node.slots_in_use()}
    broken = broken_subscriptions(desired, live)
    # A subscription the per-node diff drops or creates anyway (its database
    # holds another node, which goes) needs no replace of its own.
    for action in actions:
        if isinstance(action, DropSubscription):
            broken.pop((action.node, action.name), None)
        elif isinstance(action, CreateSubscription):
            broken.pop((action.node, action.subscription.name), None)
    result: list[Action] = []
    for action in actions:
        # A slot held by a live subscription is dropped with that subscription.
        if isinstance(action, DropSlot) and (action.node, action.slot) in in_use:
            continue
        # Dropping a set or slot on a provider whose subscriber was not read
        # (unreachable, or left out with --node) could cut a live subscription
        # (it would go `down`): that waits for a plan that reads both.
        upstream = desired.nodes[action.node].upstream
        if isinstance(action, DropSet | DropSlot) and upstream is not None and upstream not in live:
            continue
        # The old parent's drop of a moved node's subscription goes only with the new
        # parent's creation: with the new parent not read, the node would be cut off.
        if isinstance(action, DropSubscription):
            moved = desired.nodes.get(action.provider_node)
            if moved is not None and moved.upstream not in (None, action.node) and moved.upstream not in live:
                continue
        # A COPY onto rows already there fails on their keys and leaves the
        # subscription broken for good; the older rows come by verify --repair.
        if isinstance(action, CreateSubscription) and live[action.node].holds_rows:
            action = action.model_copy(update={"copy_data": False})
        if isinstance(action, AddTable) and action.synchronize_data:
            action = action.model_copy(update={"synced_at": synced_at(desired, live, action)})
        if isinstance(action, AlterSubscription) and (action.node, action.after.name) in broken:
            continue  # superseded by the replace below, which also sets sets/enabled/dsn
        if isinstance(action, ReplaceSubscription) and (action.node, action.after.name) in broken:
            reason = broken.pop((action.node, action.after.name))
            action = action.model_copy(update={"reason": reason})
        result.append(action)
    for (subscriber, name), reason in sorted(broken.items()):
        have = live[subscriber].catalog.subscriptions[name]
        want = desired.nodes[subscriber].catalog.subscriptions[name]
        result.append(ReplaceSubscription(node=subscriber, before=have, after=want, reason=reason))
    return result


def native_across_nodes(
    desired: Desired, live: Mapping[str, LiveNode], actions: list[Action]
) -> list[Action]:
    """Native engine: what a provider's change means for its subscribers.

    A table added to a publication reaches an existing subscription only
    after ALTER SUBSCRIPTION ... REFRESH PUBLICATION, which copies its rows;
    SET PUBLICATION (an AlterSubscription adding sets) copies the tables of
    the added publications. Both are labelled as the copies they are.
    """
    busy = {
        (a.node, a.after.name if isinstance(a, AlterSubscription) else a.subscription.name)
        for a in actions
        if isinstance(a, AlterSubscription | CreateSubscription)
    }
    grown = {(a.node, a.set_name) for a in actions if isinstance(a, AddTable)}
    # The copy is the subscriber's (refresh, SET PUBLICATION, or its creation),
    # never the publication's: ADD TABLE itself copies nothing.
    result: list[Action] = [
        a.model_copy(update={"copy_data": True})
        if isinstance(a, AlterSubscription)
        else a.model_copy(update={"synchronize_data": False})
        if isinstance(a, AddTable)
        # An engine switch goes tier by tier from the top: subscribers first.
        else a.model_copy(update={"step": len(desired.above(a.node))})
        if isinstance(a, SwitchSubscription) and a.node in desired.nodes
        else a
        for a in actions
    ]
    refresh: set[tuple[str, str, str]] = set()
    for subscriber, node in sorted(live.items()):
        wanted = desired.nodes[subscriber].catalog.subscriptions
        for name, sub in sorted(node.catalog.subscriptions.items()):
            if name not in wanted or (subscriber, name) in busy:
                continue
            if any((sub.provider_node, s) in grown for s in sub.replication_sets):
                refresh.add((subscriber, name, sub.provider_node))
    result.extend(
        RefreshSubscription(node=node, name=name, provider_node=provider)
        for node, name, provider in sorted(refresh)
    )
    # A slot left behind by a subscription dropped while its provider was
    # down carries the name its re-creation needs ("replication slot ...
    # already exists"): it goes first, and the plan says so.
    planned = {(a.node, a.slot) for a in result if isinstance(a, DropSlot)}
    for action in actions:
        if not isinstance(action, CreateSubscription):
            continue
        sub = action.subscription
        provider = live.get(sub.provider_node)
        if (
            provider is not None
            and sub.name in provider.slots
            and (sub.provider_node, sub.name) not in planned
        ):
            result.append(DropSlot(node=sub.provider_node, slot=sub.name))
    return result
