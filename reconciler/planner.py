"""The plan step of the flow: inspect every node at once, preflight, diff, and build a Plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import gitops
from reconciler.actions import Action, AlterSubscription, DropSlot, ReplaceSubscription
from reconciler.diff import diff
from reconciler.errors import PlanError
from reconciler.inspect import InspectResult, inspect_network
from reconciler.inspect.facts import NodeFacts
from reconciler.model import DesiredState
from reconciler.plan import Plan, order, tool_version
from reconciler.preflight import preflight


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
        raise PlanError(f"--node names undeclared node(s): {', '.join(unknown)}")
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
    actions = diff(
        {name: f.desired for name, f in facts.items()},
        {name: f.live for name, f in facts.items()},
    )
    actions = order(_across_nodes(facts, actions))
    plan = Plan(
        tool_version=tool_version(),
        desired_commit=gitops.revision(directory).commit,
        actions=tuple(actions),
        blockers=tuple(preflight(state, inspection)),
        unreachable=dict(sorted(inspection.unreachable.items())),
        fingerprints={name: facts[name].fingerprint for name in sorted(facts)},
        nodes=tuple(selected),
    )
    return PlanRun(plan=plan, inspection=inspection)


def broken_subscriptions(facts: Mapping[str, NodeFacts]) -> dict[tuple[str, str], str]:
    """(subscriber, subscription) -> why it cannot replicate although its catalog is in sync.

    Only a declared subscription that finished its initial sync and whose
    provider was read counts: its slot must then exist there. A slot that is
    missing (the provider's node was dropped and re-created, or the slot by
    hand) or `lost` (past max_slot_wal_keep_size) cannot be revived in place:
    pglogical needs the subscription dropped and re-created.
    """
    broken: dict[tuple[str, str], str] = {}
    for subscriber, f in sorted(facts.items()):
        for name, sub in sorted(f.live.subscriptions.items()):
            provider = facts.get(sub.provider_node)
            slot = f.subscription_slots.get(name)
            if name not in f.desired.subscriptions or not f.subscription_synced.get(name):
                continue
            if provider is None or slot is None:
                continue  # provider not read (unreachable or not selected): unknown, not guessed
            status = provider.slot_status.get(slot)
            if status is None:
                broken[(subscriber, name)] = f"slot {slot} is missing on {sub.provider_node}: re-copy needed"
            elif status == "lost":
                broken[(subscriber, name)] = (
                    f"slot {slot} on {sub.provider_node} is lost (past max_slot_wal_keep_size): "
                    "re-copy needed"
                )
    return broken


def _across_nodes(facts: Mapping[str, NodeFacts], actions: list[Action]) -> list[Action]:
    """Adjust the per-node diff with what only several nodes together show."""
    in_use = {slot for f in facts.values() for slot in f.subscription_slots.values()}
    broken = broken_subscriptions(facts)
    result: list[Action] = []
    for action in actions:
        # A slot held by a live subscription is dropped with that subscription.
        if isinstance(action, DropSlot) and action.slot in in_use:
            continue
        if isinstance(action, AlterSubscription) and (action.node, action.after.name) in broken:
            continue  # superseded by the replace below, which also sets sets/enabled/dsn
        if isinstance(action, ReplaceSubscription) and (action.node, action.after.name) in broken:
            reason = broken.pop((action.node, action.after.name))
            action = action.model_copy(update={"reason": reason})
        result.append(action)
    for (subscriber, name), reason in sorted(broken.items()):
        live = facts[subscriber].live.subscriptions[name]
        wanted = facts[subscriber].desired.subscriptions[name]
        result.append(ReplaceSubscription(node=subscriber, before=live, after=wanted, reason=reason))
    return result
