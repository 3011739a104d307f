"""Pure diff of one node's catalog: its pglogical node object, then sets, identities, subscriptions."""

from __future__ import annotations

from collections.abc import Collection

from reconciler.actions import (
    Action,
    ChangeNodeDsn,
    CreateNode,
    DropNode,
    DropSlot,
    DropSubscription,
    SetReplicaIdentity,
)
from reconciler.diff.sets import diff_sets
from reconciler.diff.subscriptions import diff_legacy, diff_subscriptions
from reconciler.model import NodeCatalog


def diff_node(
    node: str,
    desired: NodeCatalog,
    live: NodeCatalog,
    *,
    subscribed_sets: Collection[str] = (),
) -> list[Action]:
    """Actions on one node from its catalogs alone (unordered; the network rules and order come after).

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

    actions.extend(diff_sets(node, desired.sets, live.sets, frozenset(subscribed_sets)))
    actions.extend(
        SetReplicaIdentity(
            node=node, table=table, before=live.replica_identities.get(table, "unknown"), after=want
        )
        for table, want in sorted(desired.replica_identities.items())
        if live.replica_identities.get(table) != want
    )
    actions.extend(diff_legacy(node, desired.subscriptions, live.legacy_subscriptions))
    actions.extend(
        diff_subscriptions(
            node,
            {n: s for n, s in desired.subscriptions.items() if n not in live.legacy_subscriptions},
            # A half-done switch: the native one exists already; the switch completes it.
            {n: s for n, s in live.subscriptions.items() if n not in live.legacy_subscriptions},
        )
    )
    return actions
