"""Pure: which planned actions wait for which, derived from the plan's phase table and the edges.

The plan's order (plan.PHASES, then node, then subject) is the one place
that states the order. Apply keeps exactly the part of it that matters:

* on one node, every action waits for the one before it (one session runs
  them in plan order);
* across nodes, an action waits for the earlier-phase actions of the nodes
  it is linked to: a subscription action (create, alter, replace, switch,
  refresh, drop) links its subscriber to its provider, so a subscription
  waits for its provider's node, sets, tables and interface, and a provider's
  slot or node drop waits for the subscriber's subscription drop (removals
  in reverse).

A provider's heartbeat table joining a set waits for the heartbeat table's
creation on its subscribers (CreateHeartbeat.providers).

A schema migration waits for the same migration on the nodes its action
names (`after`: the tiers above it, or below it when leaves-first), so a
rollout goes tier by tier and a node whose tier failed holds back its subtree.

Actions on nodes that share no edge in the plan wait for nothing of each
other: they run concurrently.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from reconciler.plan import phase_index


def provider_of(action: Action) -> str | None:
    """The other node a subscription action involves (its provider); None for node-local actions."""
    match action:
        case CreateSubscription():
            return action.subscription.provider_node
        case AlterSubscription() | ReplaceSubscription() | SwitchSubscription():
            return action.after.provider_node
        case DropSubscription() | RefreshSubscription() | RestartSubscription():
            return action.provider_node
        case (
            SetWalKeepSize()
            | CreateNode()
            | ChangeNodeDsn()
            | DropNode()
            | CreateSet()
            | AlterSet()
            | DropSet()
            | AddTable()
            | ReplaceTable()
            | RemoveTable()
            | DropSlot()
            | SetReplicaIdentity()
            | RunMigration()
            | CreateHeartbeat()
        ):
            # A migration's waits across nodes are its own (RunMigration.after, see dependencies).
            return None
        case _:
            assert_never(action)


# Subscription actions that no later action of their node needs: several of
# them between two other actions of a node wait only for the one before them,
# so one provider that fails holds back its own subscription, not its
# subscriber's other subscriptions. (A drop_subscription is not one of them:
# a drop_node of that database needs it gone.)
INDEPENDENT = frozenset(
    {
        "create_subscription",
        "alter_subscription",
        "replace_subscription",
        "switch_subscription",
        "refresh_subscription",
        "restart_subscription",
    }
)


def _same_node_waits(actions: Sequence[Action], on_node: dict[str, list[int]]) -> dict[int, set[int]]:
    """Within a node: each action waits for the last other action before it; that one, for all before it."""
    waits: dict[int, set[int]] = {}
    for indices in on_node.values():
        barrier: int | None = None
        since: list[int] = []  # independent actions after the barrier
        for index in indices:
            before = {barrier} if barrier is not None else set()
            if actions[index].kind in INDEPENDENT:
                waits[index] = before
                since.append(index)
            else:
                waits[index] = before | set(since)
                barrier, since = index, []
    return waits


def dependencies(actions: Sequence[Action]) -> list[tuple[int, ...]]:
    """For each action (in plan order), the indices of the actions it waits for, sorted.

    Only direct waits are listed. On the same node: the last action before
    it (independent subscription actions in a row wait only for what
    precedes the row; the action after the row waits for all of it). Across
    nodes: a subscription action waits for the last earlier-phase action of
    its provider (which waits, in turn, for everything before it there), and
    a new or replaced one for the other subscribers' drops of subscriptions
    to that provider (a move: never two paths up at once); any other action
    waits for the earlier-phase subscription actions whose provider it runs
    on (a slot, set or node drop after the subscriber let go). An engine
    switch of a node's subscription waits for the switches of its own
    subscribers' subscriptions to it (subscribers first, as plan order has
    them).
    One session runs a node's actions one at a time, in plan order where
    nothing holds one back.
    """
    # A subscription names its provider's pglogical node; a database that holds
    # its node under an old name (dropped here, drop_node) is that node, unless
    # the old name is another node's (a restored clone): then it is that one.
    nodes = {a.node for a in actions}
    aliases = {a.name: a.node for a in actions if isinstance(a, DropNode) and a.name not in nodes}

    def provider(action: Action) -> str | None:
        name = provider_of(action)
        return aliases.get(name, name) if name is not None else None

    on_node: dict[str, list[int]] = {}
    subscribing: dict[str, list[int]] = {}  # provider -> its subscribers' subscription actions
    dropped_to: dict[str, list[int]] = {}  # pglogical node name -> drops of subscriptions to it
    for index, action in enumerate(actions):
        on_node.setdefault(action.node, []).append(index)
        other = provider(action)
        if other is not None and other != action.node:
            subscribing.setdefault(other, []).append(index)
        if isinstance(action, DropSubscription):
            dropped_to.setdefault(action.provider_node, []).append(index)
    same_node = _same_node_waits(actions, on_node)
    migration_runs = {
        (a.migration.id, a.node): i for i, a in enumerate(actions) if isinstance(a, RunMigration)
    }
    heartbeat_made: dict[str, list[int]] = {}  # provider -> its subscribers' heartbeat table creations
    for index, action in enumerate(actions):
        if isinstance(action, CreateHeartbeat):
            for child in action.providers:
                heartbeat_made.setdefault(child, []).append(index)
    result: list[tuple[int, ...]] = []
    for index, action in enumerate(actions):
        waits = set(same_node[index])
        phase = phase_index(action.kind)
        other = provider(action)
        if other is not None and other != action.node:
            earlier = [i for i in on_node.get(other, ()) if i < index and _phase(actions[i]) < phase]
            if earlier:
                waits.add(earlier[-1])
            if action.kind in ("create_subscription", "replace_subscription", "switch_subscription"):
                # A node moving to a new parent: the old parent's subscription to
                # the same provider goes first, or the tier above gets its rows twice.
                waits.update(
                    i
                    for i in subscribing.get(other, ())
                    if i < index and actions[i].kind == "drop_subscription" and actions[i].node != action.node
                )
        elif other is None:
            waits.update(
                i for i in subscribing.get(action.node, ()) if i < index and _phase(actions[i]) < phase
            )
        if isinstance(action, DropNode):
            # Two databases may hold a node of one name (a restored clone): a
            # subscription to that name may be either's, so its drop goes first.
            waits.update(
                i
                for i in dropped_to.get(action.name, ())
                if i < index and actions[i].node != action.node
            )
        if isinstance(action, SwitchSubscription):
            # Engine switch, subscribers first (from the top): a node's own
            # subscriptions turn native only once its subscribers' ones to it
            # did (native_switch._create_disabled says what happens otherwise).
            # Plan order has them first already (SwitchSubscription.step).
            waits.update(
                i
                for i in subscribing.get(action.node, ())
                if i < index and actions[i].kind == "switch_subscription"
            )
        if isinstance(action, RunMigration):
            # Tier by tier: the same migration on the nodes the diff put before it
            # (the tiers above for an additive one, below for a leaves-first one).
            waits.update(migration_runs.get((action.migration.id, n), -1) for n in action.after)
            waits.discard(-1)
        if isinstance(action, AddTable) and action.table == HEARTBEAT_TABLE:
            # A provider adding its heartbeat table to a set queues a copy at the
            # subscribers already using the set: the table must exist there first.
            waits.update(heartbeat_made.get(action.node, ()))
        result.append(tuple(sorted(waits)))
    return result


def _phase(action: Action) -> int:
    return phase_index(action.kind)
