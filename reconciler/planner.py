"""The plan step of the flow: inspect every node at once, preflight, diff, and build a Plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import gitops
from reconciler.actions import (
    Action,
    AddTable,
    AlterSubscription,
    CreateSubscription,
    DropSet,
    DropSlot,
    RefreshSubscription,
    ReplaceSubscription,
    SetWalKeepSize,
)
from reconciler.diff import diff
from reconciler.errors import PlanError
from reconciler.inspect import InspectResult, inspect_network
from reconciler.inspect.facts import NodeFacts
from reconciler.model import DesiredState, wal_keep_bytes
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
    actions = _across_nodes(state, facts, actions)
    if state.engine == "native":
        actions = _native_across_nodes(facts, actions)
    actions = order([*actions, *server_settings(state, facts)])
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


def _native_across_nodes(facts: Mapping[str, NodeFacts], actions: list[Action]) -> list[Action]:
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
    result: list[Action] = [
        a.model_copy(update={"copy_data": True}) if isinstance(a, AlterSubscription) else a for a in actions
    ]
    refresh: set[tuple[str, str, str]] = set()
    for subscriber, f in sorted(facts.items()):
        for name, sub in sorted(f.live.subscriptions.items()):
            if name not in f.desired.subscriptions or (subscriber, name) in busy:
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
        provider = facts.get(sub.provider_node)
        if (
            provider is not None
            and sub.name in provider.slot_status
            and (sub.provider_node, sub.name) not in planned
        ):
            result.append(DropSlot(node=sub.provider_node, slot=sub.name))
    return result


def _across_nodes(state: DesiredState, facts: Mapping[str, NodeFacts], actions: list[Action]) -> list[Action]:
    """Adjust the per-node diff with what only several nodes together show."""
    in_use = {slot for f in facts.values() for slot in f.subscription_slots.values()}
    broken = broken_subscriptions(facts)
    result: list[Action] = []
    for action in actions:
        # A slot held by a live subscription is dropped with that subscription.
        if isinstance(action, DropSlot) and action.slot in in_use:
            continue
        # Dropping a set or slot on a provider whose subscriber was not read
        # (unreachable, or left out with --node) could cut a live subscription
        # (it would go `down`): that waits for a plan that reads both.
        upstream = state.nodes[action.node].upstream
        if isinstance(action, DropSet | DropSlot) and upstream is not None and upstream not in facts:
            continue
        # A COPY onto rows already there fails on their keys and leaves the
        # subscription broken for good; the older rows come by verify --repair.
        # Not read (None) counts as rows: a COPY skipped is mended by verify
        # --repair, a failed one is not.
        tables = facts[action.node].tables.values()
        holds_rows = any(t.has_rows or (t.exists and t.has_rows is None) for t in tables)
        if isinstance(action, CreateSubscription) and holds_rows:
            action = action.model_copy(update={"copy_data": False})
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


def server_settings(state: DesiredState, facts: Mapping[str, NodeFacts]) -> list[SetWalKeepSize]:
    """Declared max_slot_wal_keep_size that differs from the live server, once per server.

    Nodes sharing a server (same system_identifier) share the setting; the
    loader makes them declare one value. The first node by name carries it.
    """
    actions: list[SetWalKeepSize] = []
    seen: set[str] = set()
    for name, f in sorted(facts.items()):
        wanted = state.max_slot_wal_keep_size(name)
        if wanted is None or f.system_identifier in seen:
            continue
        seen.add(f.system_identifier)
        if wal_keep_bytes(f.max_slot_wal_keep_size) != wal_keep_bytes(wanted):
            actions.append(SetWalKeepSize(node=name, before=f.max_slot_wal_keep_size, after=wanted))
    return actions
