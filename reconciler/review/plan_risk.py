"""Risks of the plan against live: blockers, destroys, needs verify, initial copies with size estimates.

Every one comes from the actions' own flags (destructive, data_movement),
the ones the plan's labels show, never from a list of action types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    DataMovement,
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
from reconciler.model import DesiredState, format_bytes
from reconciler.plan import Plan
from reconciler.review.risk import CopyEstimate, Risk, RiskKind, q
from reconciler.review.sizes import TableSize
from reconciler.secrets import redact_text
from reconciler.topology import edges


def copies(plan: Plan, head: DesiredState) -> list[tuple[str, str, str]]:
    """(provider, subscriber, table) of every initial copy the plan starts, sorted.

    Only actions whose own flag says INITIAL_COPY count, the flag the plan's
    `[initial copy]` label shows: a re-created subscription, one created
    without a copy or a table re-added where the subscriber already holds it
    synced copies nothing, whatever its type.
    """
    added = {(a.node, a.set_name, a.table) for a in plan.actions if isinstance(a, AddTable)}
    found: set[tuple[str, str, str]] = set()
    for action in plan.actions:
        if action.data_movement is DataMovement.INITIAL_COPY:
            found.update(_copies(action, head, added))
    return sorted(found)


def _set_tables(head: DesiredState, sets: Iterable[str]) -> list[str]:
    return sorted({t for s in sets if s in head.replication_sets for t in head.replication_sets[s].tables})


def _copies(
    action: Action, head: DesiredState, added: set[tuple[str, str, str]]
) -> list[tuple[str, str, str]]:
    """What one copying action copies: which provider's table reaches which subscriber.

    Every action type is named, so a new one is a type error here until it
    says what it copies (mypy: assert_never), never a copy left uncounted.
    """
    match action:
        case AddTable():
            decl = head.nodes.get(action.node)
            # pglogical copies an added table to the subscribers of the node it is added on.
            if decl is not None and decl.upstream is not None:
                return [(action.node, decl.upstream, action.table)]
            return []
        case CreateSubscription():
            sub = action.subscription
            return [(sub.provider_node, action.node, t) for t in _set_tables(head, sub.replication_sets)]
        case AlterSubscription():
            # SET PUBLICATION copies the tables of the publications it adds.
            new_sets = set(action.after.replication_sets) - set(action.before.replication_sets)
            return [(action.after.provider_node, action.node, t) for t in _set_tables(head, new_sets)]
        case RefreshSubscription():
            # REFRESH PUBLICATION copies the tables the provider's publications gained in this plan.
            key = (action.node, action.name)
            sets = {s for e in edges(head) if (e.subscriber, e.subscription) == key for s in e.sets}
            grown = {t for node, s, t in added if node == action.provider_node and s in sets}
            return [(action.provider_node, action.node, t) for t in sorted(grown)]
        case (
            SetWalKeepSize()
            | CreateNode()
            | ChangeNodeDsn()
            | DropNode()
            | CreateSet()
            | AlterSet()
            | DropSet()
            | ReplaceTable()
            | RemoveTable()
            | ReplaceSubscription()
            | DropSubscription()
            | DropSlot()
            | SetReplicaIdentity()
            | SwitchSubscription()
            | RestartSubscription()
            | RunMigration()
            | CreateHeartbeat()
        ):
            return []  # copies no rows (their data_movement is never INITIAL_COPY)
        case _:
            assert_never(action)


def plan_risks(
    plan: Plan,
    head: DesiredState,
    sizes: Mapping[str, Mapping[str, TableSize]],
) -> list[Risk]:
    """Risks the plan against live adds: blockers, its destroys, what needs verify, copy sizes, orphaned
    slots found live. Each comes from the actions' own flags, the ones the plan's labels show."""
    risks = [
        Risk(
            kind=RiskKind.BLOCKING,
            subject=f"node {b.node}" + (f" table {b.table}" if b.table else ""),
            message=redact_text(b.message),
        )
        for b in plan.sorted_blockers()
    ]
    if plan.destroys:
        risks.append(
            Risk(
                kind=RiskKind.DESTROYS,
                subject="plan",
                message=(
                    f"the plan destroys {len(plan.destroys)} object(s) on "
                    f"{len({a.node for a in plan.destroys})} node(s); `apply` runs them only with "
                    "`--allow-destroy`"
                ),
            )
        )
    resync = [a for a in plan.actions if a.data_movement is DataMovement.RESYNC_NEEDED]
    if resync:
        nodes = ", ".join(q(n) for n in sorted({a.node for a in resync}))
        risks.append(
            Risk(
                kind=RiskKind.NEEDS_VERIFY,
                subject="plan",
                message=(
                    f"{len(resync)} action(s) of the plan on {nodes} are marked [needs verify]: they change "
                    "which rows a subscriber should hold without copying them; after apply run "
                    "`reconcile verify --repair`"
                ),
            )
        )
    for action in plan.actions:
        if isinstance(action, DropSlot):
            risks.append(
                Risk(
                    kind=RiskKind.ORPHANED_SLOTS,
                    subject=f"node {action.node}",
                    message=(
                        f"slot {q(action.slot)} on {q(action.node)} is used by no declared subscription "
                        "and retains WAL; the plan drops it"
                    ),
                )
            )
    planned = copies(plan, head)
    if planned:
        estimates = tuple(
            CopyEstimate(
                provider=p,
                subscriber=s,
                table=t,
                rows=sizes.get(p, {}).get(t, TableSize(rows=None, bytes=None)).rows,
                bytes=sizes.get(p, {}).get(t, TableSize(rows=None, bytes=None)).bytes,
            )
            for p, s, t in planned
        )
        sized = [e.bytes for e in estimates if e.bytes is not None]
        counted = [e.rows for e in estimates if e.rows is not None]
        plural = "copy" if len(estimates) == 1 else "copies"
        text = f"the plan starts {len(estimates)} initial table {plural}"
        if sized:
            text += f": at most {format_bytes(sum(sized))}"
            if counted:
                text += f" and about {sum(counted):,} rows"
            text += " before the filters"
        unknown = len(estimates) - len(sized)
        if unknown:
            text += f" ({unknown} of unknown size: provider not reachable or table missing)"
        risks.append(Risk(kind=RiskKind.DATA_MOVEMENT, subject="plan", message=text, estimates=estimates))
    return risks


def wanted_sizes(plan: Plan, head: DesiredState) -> dict[str, list[str]]:
    """{provider: [table]} whose size the copy estimate needs."""
    wanted: dict[str, set[str]] = {}
    for provider, _subscriber, table in copies(plan, head):
        wanted.setdefault(provider, set()).add(table)
    return {p: sorted(t) for p, t in sorted(wanted.items())}
