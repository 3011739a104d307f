"""Pure diff: desired x live state -> every action that makes live equal desired, in plan order; no I/O.

`changes` is the one function that decides what to change. Per node, the
catalogs are compared (nodes.py, sets.py, subscriptions.py); then the
rules that need several nodes and the live facts (network.py: lost or
missing slots, slots in use, drops held while a subscriber is unread,
copies onto rows, tables already synced, native refresh), and server
settings (settings.py); plan.order gives the one global order.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.actions import Action
from reconciler.diff.desired import Desired, DesiredNode
from reconciler.diff.heartbeat import heartbeat_tables
from reconciler.diff.migrations import Rollout, needing_migration, rollout, without_missing_tables
from reconciler.diff.network import across_nodes, broken_subscriptions, native_across_nodes
from reconciler.diff.nodes import diff_node
from reconciler.diff.restarts import restarts
from reconciler.diff.settings import server_settings
from reconciler.live import LiveNode
from reconciler.model import Engine, NodeCatalog
from reconciler.plan import order


def changes(desired: Desired, live: Mapping[str, LiveNode]) -> list[Action]:
    """Every action that makes `live` equal `desired`, over the nodes present in both, in order."""
    # The sets each provider is asked for: by live subscriptions, and (not
    # knowing better) by the declared ones of subscribers that were not read.
    asked: dict[str, set[str]] = {}
    unread = [d.catalog for name, d in desired.nodes.items() if name not in live]
    for catalog in [node.catalog for node in live.values()] + unread:
        for sub in catalog.subscriptions.values():
            asked.setdefault(sub.provider_node, set()).update(sub.replication_sets)
    both = sorted(set(desired.nodes) & set(live))
    actions: list[Action] = []
    for name in both:
        actions.extend(
            diff_node(
                name, desired.nodes[name].catalog, live[name].catalog, subscribed_sets=asked.get(name, ())
            )
        )
    read = {name: live[name] for name in both}
    actions = across_nodes(desired, read, actions)
    if desired.engine is Engine.NATIVE:
        actions = native_across_nodes(desired, read, actions)
    actions += restarts(desired, read, actions)
    # Schema migrations tier by tier; a table a migration still has to create
    # on a node is not added to a set there before it exists.
    migrations = rollout(desired, read)
    actions = without_missing_tables(actions, needing_migration(desired, read, migrations))
    actions += heartbeat_tables(desired, read)
    return order([*actions, *migrations.actions, *server_settings(desired, read)])


def diff(desired: Mapping[str, NodeCatalog], live: Mapping[str, NodeCatalog]) -> list[Action]:
    """`changes` of catalogs alone, with no slot, sync or row facts (nothing known, nothing guessed)."""
    return changes(
        Desired(nodes={name: DesiredNode(catalog=c) for name, c in desired.items()}),
        {name: LiveNode(catalog=c) for name, c in live.items()},
    )


__all__ = [
    "Desired",
    "DesiredNode",
    "Rollout",
    "broken_subscriptions",
    "changes",
    "diff",
    "diff_node",
    "rollout",
]
