"""The plan step: inspect all nodes at once, preflight, diff, build a Plan (no rules of its own)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import gitops
from reconciler.actions import Action
from reconciler.diff import Desired, DesiredNode, Rollout, changes, rollout
from reconciler.engines import engine_for
from reconciler.errors import PlanError
from reconciler.inspect import InspectResult, inspect_network
from reconciler.model import DesiredState
from reconciler.names import did_you_mean
from reconciler.plan import Plan, tool_version
from reconciler.preflight import Blocker, preflight
from reconciler.topology import desired_catalogs


@dataclass(frozen=True)
class PlanRun:
    """A computed plan together with the inspection it came from (stats, facts)."""

    plan: Plan
    inspection: InspectResult


def select_nodes(state: DesiredState, nodes: Sequence[str] | None) -> list[str]:
    """The nodes to plan: all declared ones, or the named ones (each must be declared)."""
    if not nodes:
        return sorted(state.nodes)
    unknown = sorted(set(nodes) - set(state.nodes))
    if unknown:
        named = ", ".join(f"{name}{did_you_mean(name, state.nodes)}" for name in unknown)
        raise PlanError(f"--node names undeclared node(s): {named}")
    return sorted(set(nodes))


def compute_plan(
    state: DesiredState,
    directory: Path,
    *,
    nodes: Sequence[str] | None = None,
    parallelism: int = 32,
    timeout: float = 10.0,
) -> PlanRun:
    """Read the live network (one round trip per node, all at once) and plan the difference.

    Unreachable nodes are not planned but named in the plan with the reason;
    the others are planned in full.
    """
    selected = select_nodes(state, nodes)
    inspection = inspect_network(state, selected, parallelism=parallelism, timeout=timeout)
    facts = inspection.facts
    desired = Desired(
        engine=state.engine,
        restart_after_seconds=state.monitoring.restart_after_seconds,
        migrations=state.migrations,
        heartbeat=state.monitoring.heartbeat,
        nodes={
            name: DesiredNode(
                catalog=f.desired,
                upstream=state.nodes[name].upstream,
                max_slot_wal_keep_size=state.max_slot_wal_keep_size(name),
            )
            for name, f in facts.items()
        },
    )
    # Nodes not read (unreachable, or left out with --node): their declared
    # subscriptions still tell which sets have subscribers.
    # (Their upstream: a migration below an unread node waits for it.)
    unread = {
        n: DesiredNode(catalog=c, upstream=state.nodes[n].upstream)
        for n, c in desired_catalogs(state).items()
        if n not in facts
    }
    desired = desired.model_copy(update={"nodes": {**desired.nodes, **unread}})
    live = {name: f.state for name, f in facts.items()}
    state_tables = {t for s in state.replication_sets.values() for t in s.tables}
    actions = changes(desired, live)
    migrations = rollout(desired, live)
    plan = Plan(
        tool_version=tool_version(),
        desired_commit=gitops.revision(directory).commit,
        actions=tuple(actions),
        blockers=(
            *preflight(state, inspection),
            *unsupported(state, actions),
            *migration_blockers(migrations),
        ),
        migrations_waiting=migrations.waiting,
        migrations_unknown=migrations.unknown,
        unreachable=dict(sorted(inspection.unreachable.items())),
        fingerprints={name: facts[name].fingerprint for name in sorted(facts)},
        nodes=tuple(selected),
        declared=tuple(sorted(state.nodes)),
        unsettled={
            name: str(f.last_apply)
            for name, f in sorted(facts.items())
            if f.last_apply is not None and f.last_apply != "ok"
        },
        pending_rows={
            name: tuple(sorted(t for t in f.pending_rows if t in state_tables))
            for name, f in sorted(facts.items())
            if name in state.nodes and any(t in state_tables for t in f.pending_rows)
        },
    )
    return PlanRun(plan=plan, inspection=inspection)


def migration_blockers(migrations: Rollout) -> list[Blocker]:
    """A migration whose file changed after it ran: blocks the network, naming every node it ran on."""
    return [
        Blocker(
            node=node,
            message=(
                f"migration {name} changed after it ran on {', '.join(nodes)} (its checksum differs):"
                " a migration that ran is never edited; restore the file and add a new migration"
            ),
        )
        for name, nodes in migrations.drifted.items()
        for node in nodes
    ]


def unsupported(state: DesiredState, actions: list[Action]) -> list[Blocker]:
    """Actions the network's engine cannot run: blockers now, never a surprise at apply."""
    engine = engine_for(state.engine)
    return [
        Blocker(node=a.node, message=f"the {state.engine} engine cannot {a.symbol} {a.describe()}: {why}")
        for a in actions
        if (why := engine.supports(a)) is not None
    ]
