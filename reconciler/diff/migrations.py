"""Pure: the schema migrations each read node still needs, tier by tier, and the nodes that must wait.

An additive migration (the default) runs on the top tier first and on a
node only once every node above it has it, live or earlier in this plan: a
node must never send a column its subscriber lacks (REPLICATION-NOTES,
"Living networks"). A leaves-first one (it drops or narrows what providers
send) goes the other way, from the leaves up. A node whose tier above (or
below) was not read, or is itself waiting, waits too: an unreachable region
holds back its own subtree, never the rest of the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.actions import Action, AddTable, ReplaceTable, RunMigration, SetReplicaIdentity
from reconciler.diff.desired import Desired
from reconciler.live import LiveNode


@dataclass(frozen=True)
class Rollout:
    """The migrations to run, why nodes wait, migrations live that the desired state does not know."""

    actions: tuple[RunMigration, ...] = ()
    waiting: dict[str, str] = field(default_factory=dict)  # node -> why its migrations wait
    unknown: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node -> names (drift)
    drifted: dict[str, tuple[str, ...]] = field(default_factory=dict)  # migration -> nodes, other checksum


def rollout(desired: Desired, live: Mapping[str, LiveNode]) -> Rollout:
    """Every pending migration of every read node, in rollout order, and what waits and why."""
    ancestors = {n: desired.above(n) for n in desired.nodes}
    descendants: dict[str, list[str]] = {n: [] for n in desired.nodes}
    for node, above in ancestors.items():
        for a in above:
            descendants[a].append(node)
    depth = {n: len(a) for n, a in ancestors.items()}
    deepest = max(depth.values(), default=0)
    known = {m.name for m in desired.migrations}
    actions: list[RunMigration] = []
    waiting: dict[str, str] = {}
    drifted: dict[str, list[str]] = {}
    for m in desired.migrations:
        pending: set[str] = set()
        # Top first for an additive migration, leaves first for a leaves-first one.
        order = sorted(desired.nodes, key=lambda n: (-depth[n] if m.leaves_first else depth[n], n))
        for node in order:
            if node not in live:
                continue
            ran = live[node].migrations.get(m.name)
            if ran is not None:
                if ran != m.checksum:
                    drifted.setdefault(m.name, []).append(node)
                continue
            if node in waiting:
                continue  # an earlier migration waits here: the later ones wait behind it
            first = descendants[node] if m.leaves_first else ancestors[node]
            reason = None
            for other in sorted(first, key=lambda n: depth[n], reverse=not m.leaves_first):
                if other not in live:
                    reason = f"migration {m.name} waits on {other} (not read)"
                elif other not in pending and m.name not in live[other].migrations:
                    reason = waiting.get(other) or f"migration {m.name} waits on {other}"
                if reason is not None:
                    break
            if reason is not None:
                waiting[node] = reason
                continue
            pending.add(node)
            providers: tuple[tuple[str, str], ...] = ()
            if m.leaves_first:
                subs = live[node].catalog.subscriptions
                providers = tuple(
                    sorted(
                        (sub.provider_node, live[node].subscriptions[name].slot)
                        for name, sub in subs.items()
                        if name in live[node].subscriptions and sub.provider_node in desired.nodes
                    )
                )
            actions.append(
                RunMigration(
                    node=node,
                    migration=m,
                    after=tuple(sorted(n for n in first if n in pending)),
                    providers=providers,
                    step=deepest - depth[node] if m.leaves_first else depth[node],
                )
            )
    unknown = {
        node: names
        for node in sorted(live)
        if (names := tuple(sorted(set(live[node].migrations) - known)))
    }
    return Rollout(
        actions=tuple(actions),
        waiting=dict(sorted(waiting.items())),
        unknown=unknown,
        drifted={name: tuple(sorted(nodes)) for name, nodes in sorted(drifted.items())},
    )


def needing_migration(
    desired: Desired, live: Mapping[str, LiveNode], planned: Rollout
) -> set[tuple[str, str]]:
    """(node, table) of tables a migration creates that neither ran there nor is planned there."""
    runs = {(a.node, a.migration.name) for a in planned.actions}
    missing: set[tuple[str, str]] = set()
    for m in desired.migrations:
        for node in live:
            if m.name not in live[node].migrations and (node, m.name) not in runs:
                missing.update((node, table) for table in m.creates)
    return missing


def without_missing_tables(actions: list[Action], missing: set[tuple[str, str]]) -> list[Action]:
    """The actions, less those on a table that a migration waiting on its node would create first."""
    return [
        a
        for a in actions
        if not (isinstance(a, AddTable | ReplaceTable | SetReplicaIdentity) and (a.node, a.table) in missing)
    ]
