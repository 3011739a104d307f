"""Risk labels of a change: what it destroys, what data it moves (with size estimates), what needs verify."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from reconciler.actions import (
    Action,
    AddTable,
    AlterSubscription,
    CreateSubscription,
    DataMovement,
    DropSlot,
    RefreshSubscription,
)
from reconciler.model import DesiredState, Frozen, format_bytes
from reconciler.plan import Plan
from reconciler.review.change import Change
from reconciler.review.sizes import TableSize
from reconciler.secrets import redact_text
from reconciler.topology import edges


class RiskKind(StrEnum):
    # Declaration order is the order of the risk list: the worst first.
    BLOCKING = "blocking"
    DESTROYS = "destroys"
    ORPHANED_SLOTS = "orphaned slots"
    NEEDS_VERIFY = "needs verify --repair"
    DATA_MOVEMENT = "data movement"
    BEHAVIOUR = "behaviour change"


_ORDER = {kind: i for i, kind in enumerate(RiskKind)}


class CopyEstimate(Frozen):
    """An initial copy: `subscriber` copies `table` from `provider`; sizes as the provider has them.

    The estimate is of the whole table: the row filter cuts the copy, so it
    is an upper bound. None: the provider did not answer or never analysed it.
    """

    provider: str
    subscriber: str
    table: str
    rows: int | None = None
    bytes: int | None = None


class Risk(Frozen):
    kind: RiskKind
    subject: str
    message: str
    estimates: tuple[CopyEstimate, ...] = ()


def _q(name: str) -> str:
    return f"`{name}`"


def _origins(state: DesiredState, node: str) -> set[str]:
    """`node` and every node below it: whose rows reach `node` (forward_origins {all} above leaves)."""
    found = {node}
    for child in state.children(node):
        found |= _origins(state, child)
    return found


def change_risks(change: Change, base: DesiredState | None, head: DesiredState) -> list[Risk]:
    """Risks the declaration change implies, whatever the live network looks like."""
    risks: list[Risk] = []
    for link in change.links_added:
        if base is None or link.subscriber not in base.nodes:
            continue
        # Rows that reached the subscriber through its old children come again
        # with the new link's initial copy (a node moved under a new middle node).
        again = (_origins(base, link.subscriber) - {link.subscriber}) & _origins(head, link.provider)
        if again:
            names = ", ".join(_q(n) for n in sorted(again))
            risks.append(
                Risk(
                    kind=RiskKind.NEEDS_VERIFY,
                    subject=f"subscription {link.subscription}",
                    message=(
                        f"{_q(link.subscriber)} already holds the rows of {names} (they reached it through "
                        f"another path); the initial copy from {_q(link.provider)} brings them again: check "
                        "the subscription's sync status after apply and run `reconcile verify`"
                    ),
                )
            )
    removed = {n.name for n in change.nodes_removed}
    for node in change.nodes_removed:
        text = f"node {_q(node.name)} leaves the desired state: reconcile stops managing it"
        if node.upstream is not None and node.upstream not in removed:
            text += f"; {_q(node.upstream)} drops its subscription to it and stops receiving its rows"
        risks.append(Risk(kind=RiskKind.DESTROYS, subject=f"node {node.name}", message=text))
        # Its own subscriptions hold slots on its providers (its children). Once
        # the node is undeclared nothing drops those subscriptions, and a slot
        # nobody consumes retains WAL on the child until its disk fills.
        held = [
            link
            for link in change.links_removed
            if link.subscriber == node.name and link.provider not in removed
        ]
        if held:
            providers = ", ".join(_q(link.provider) for link in held)
            subs = ", ".join(_q(link.subscription) for link in held)
            risks.append(
                Risk(
                    kind=RiskKind.ORPHANED_SLOTS,
                    subject=f"node {node.name}",
                    message=(
                        f"{_q(node.name)}'s subscriptions {subs} hold replication slots on {providers}; "
                        f"reconcile no longer manages {_q(node.name)}, so nothing drops them and they "
                        f"retain WAL there: drop them on {_q(node.name)} (pglogical.drop_subscription) "
                        "before merging, or drop the slots on the providers after"
                    ),
                )
            )
    for link in change.links_removed:
        if link.subscriber in removed or link.provider in removed:
            continue  # said with the node
        risks.append(
            Risk(
                kind=RiskKind.DESTROYS,
                subject=f"subscription {link.subscription}",
                message=(
                    f"{_q(link.subscriber)} drops subscription {_q(link.subscription)}: "
                    f"{_q(link.provider)}'s rows stop flowing to it; the slot on {_q(link.provider)} "
                    "goes and its retained WAL is released"
                ),
            )
        )
    for lc in change.links_changed:
        before = "{" + ",".join(lc.before) + "}"
        after = "{" + ",".join(lc.after) + "}"
        risks.append(
            Risk(
                kind=RiskKind.DESTROYS,
                subject=f"subscription {lc.subscription}",
                message=(
                    f"subscription {_q(lc.subscription)} ({_q(lc.subscriber)} <- {_q(lc.provider)}) is "
                    f"dropped and re-created: forward_origins {before} -> {after}, which pglogical cannot "
                    f"alter; the new subscription copies {_q(lc.provider)}'s rows again, then run "
                    "`reconcile verify --repair`"
                ),
            )
        )
    for s in change.sets_removed:
        risks.append(
            Risk(
                kind=RiskKind.DESTROYS,
                subject=f"set {s.name}",
                message=(
                    f"replication set {_q(s.name)} is dropped on every node with its "
                    f"{len(s.tables)} table(s): their changes stop flowing upstream; rows already copied stay"
                ),
            )
        )
    dropped_sets = {s.name for s in change.sets_removed}
    for t in change.tables_removed:
        if t.set_name in dropped_sets:
            continue
        risks.append(
            Risk(
                kind=RiskKind.DESTROYS,
                subject=f"table {t.set_name}/{t.table}",
                message=(
                    f"{_q(t.table)} leaves set {_q(t.set_name)} on every node: its changes stop flowing "
                    "upstream; rows already copied stay where they are"
                ),
            )
        )
    for edit in change.tables_changed:
        # pglogical has no alter for a set's table: it is removed and re-added
        # without a copy, so rows already upstream keep what the old spec gave them.
        what = " and ".join(
            w for w, on in (("row filter", edit.filter_changed), ("column list", edit.columns_changed)) if on
        )
        effects = []
        if edit.filter_changed:
            effects.append(
                "rows that now pass the filter are not copied and rows that no longer pass are not removed"
            )
        if edit.columns_changed:
            effects.append("rows already copied keep the old column values (new columns stay empty upstream)")
        risks.append(
            Risk(
                kind=RiskKind.NEEDS_VERIFY,
                subject=f"table {edit.set_name}/{edit.table}",
                message=(
                    f"{_q(edit.table)} in set {_q(edit.set_name)} changes its {what}: {'; '.join(effects)}; "
                    f"after apply run `reconcile verify --repair --table {edit.table}`"
                ),
            )
        )
    for t in change.tables_added:
        risks.append(
            Risk(
                kind=RiskKind.DATA_MOVEMENT,
                subject=f"table {t.set_name}/{t.table}",
                message=(
                    f"{_q(t.table)} joins set {_q(t.set_name)}: every upstream node copies its filtered rows "
                    "from each of its children (initial copy)"
                ),
            )
        )
    for link in change.links_added:
        risks.append(
            Risk(
                kind=RiskKind.DATA_MOVEMENT,
                subject=f"subscription {link.subscription}",
                message=(
                    f"{_q(link.subscriber)} subscribes to {_q(link.provider)} and copies the rows of every "
                    "replicated table that pass the filters (initial copy)"
                ),
            )
        )
    for field in change.set_fields:
        if field.after is not None and "truncate" in field.after and "truncate" not in (field.before or ""):
            risks.append(
                Risk(
                    kind=RiskKind.BEHAVIOUR,
                    subject=f"set {field.subject}",
                    message=(
                        f"set {_q(field.subject)} now replicates TRUNCATE: a truncate at any node empties "
                        "the table on its upstream, rows from every other child included"
                    ),
                )
            )
    for setting in change.settings:
        if setting.field == "engine":
            risks.append(
                Risk(
                    kind=RiskKind.BEHAVIOUR,
                    subject="engine",
                    message=(
                        f"the engine changes from {_q(setting.before or '')} to {_q(setting.after or '')}: "
                        "every replication object is built anew"
                    ),
                )
            )
    return risks


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
    """What one copying action copies: which provider's table reaches which subscriber."""
    if isinstance(action, AddTable):
        decl = head.nodes.get(action.node)
        # pglogical copies an added table to the subscribers of the node it is added on.
        if decl is not None and decl.upstream is not None:
            return [(action.node, decl.upstream, action.table)]
        return []
    if isinstance(action, CreateSubscription):
        sub = action.subscription
        return [(sub.provider_node, action.node, t) for t in _set_tables(head, sub.replication_sets)]
    if isinstance(action, AlterSubscription):
        # SET PUBLICATION copies the tables of the publications it adds.
        new_sets = set(action.after.replication_sets) - set(action.before.replication_sets)
        return [(action.after.provider_node, action.node, t) for t in _set_tables(head, new_sets)]
    if isinstance(action, RefreshSubscription):
        # REFRESH PUBLICATION copies the tables the provider's publications gained in this plan.
        key = (action.node, action.name)
        sets = {s for e in edges(head) if (e.subscriber, e.subscription) == key for s in e.sets}
        grown = {t for node, s, t in added if node == action.provider_node and s in sets}
        return [(action.provider_node, action.node, t) for t in sorted(grown)]
    return []


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
        nodes = ", ".join(_q(n) for n in sorted({a.node for a in resync}))
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
                        f"slot {_q(action.slot)} on {_q(action.node)} is used by no declared subscription "
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


def sort_risks(risks: list[Risk]) -> tuple[Risk, ...]:
    return tuple(sorted(set(risks), key=_risk_key))


def _risk_key(risk: Risk) -> tuple[int, str, str]:
    return (_ORDER[risk.kind], risk.subject, risk.message)

