"""Risk labels of a declaration change: what it destroys, what data it moves, what needs verify.

The risks of the plan against live (blockers, copies with sizes) are in plan_risk.py.
"""

from __future__ import annotations

from enum import StrEnum

from reconciler.model import DesiredState, Frozen
from reconciler.review.change import Change


class RiskKind(StrEnum):
    # Declaration order is the order of the risk list: the worst first.
    BLOCKING = "blocking"
    # SQL from the merge request that apply runs on every node: read it whole.
    MIGRATION = "schema migration"
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
    text: str | None = None  # a migration's SQL, shown whole under the risk table


def q(name: str) -> str:
    """A name as inline code in a risk message."""
    return f"`{name}`"


def _origins(state: DesiredState, node: str) -> set[str]:
    """`node` and every node below it: whose rows reach `node` (forward_origins {all} above leaves)."""
    found = {node}
    for child in state.children(node):
        found |= _origins(state, child)
    return found


def migration_risks(base: DesiredState | None, head: DesiredState) -> list[Risk]:
    """Every migration the merge request adds or changes: SQL that apply will run on every node."""
    before = {m.name: m for m in base.migrations} if base is not None else {}
    risks: list[Risk] = []
    for m in head.migrations:
        old = before.get(m.name)
        if old is not None and old.checksum == m.checksum:
            continue
        what = "adds" if old is None else "changes (a node where it already ran refuses it: checksum)"
        order = "from the leaves up" if m.leaves_first else "top-down, the top level first"
        risks.append(
            Risk(
                kind=RiskKind.MIGRATION,
                subject=f"migration {m.name}",
                message=(
                    f"the merge request {what} migration {q(m.name)}: `apply` runs its SQL on every node, "
                    f"{order}; read it whole (below)"
                ),
                text=m.text,
            )
        )
    return risks


def change_risks(change: Change, base: DesiredState | None, head: DesiredState) -> list[Risk]:
    """Risks the declaration change implies, whatever the live network looks like."""
    risks: list[Risk] = migration_risks(base, head)
    for link in change.links_added:
        if base is None or link.subscriber not in base.nodes:
            continue
        # Rows that reached the subscriber through its old children come again
        # with the new link's initial copy (a node moved under a new middle node).
        again = (_origins(base, link.subscriber) - {link.subscriber}) & _origins(head, link.provider)
        if again:
            names = ", ".join(q(n) for n in sorted(again))
            risks.append(
                Risk(
                    kind=RiskKind.NEEDS_VERIFY,
                    subject=f"subscription {link.subscription}",
                    message=(
                        f"{q(link.subscriber)} already holds the rows of {names} (they reached it through "
                        f"another path); the initial copy from {q(link.provider)} brings them again: check "
                        "the subscription's sync status after apply and run `reconcile verify`"
                    ),
                )
            )
    removed = {n.name for n in change.nodes_removed}
    for node in change.nodes_removed:
        text = f"node {q(node.name)} leaves the desired state: reconcile stops managing it"
        if node.upstream is not None and node.upstream not in removed:
            text += f"; {q(node.upstream)} drops its subscription to it and stops receiving its rows"
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
            providers = ", ".join(q(link.provider) for link in held)
            subs = ", ".join(q(link.subscription) for link in held)
            risks.append(
                Risk(
                    kind=RiskKind.ORPHANED_SLOTS,
                    subject=f"node {node.name}",
                    message=(
                        f"{q(node.name)}'s subscriptions {subs} hold replication slots on {providers}; "
                        f"reconcile no longer manages {q(node.name)}, so nothing drops them and they "
                        f"retain WAL there: drop them on {q(node.name)} (pglogical.drop_subscription) "
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
                    f"{q(link.subscriber)} drops subscription {q(link.subscription)}: "
                    f"{q(link.provider)}'s rows stop flowing to it; the slot on {q(link.provider)} "
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
                    f"subscription {q(lc.subscription)} ({q(lc.subscriber)} <- {q(lc.provider)}) is "
                    f"dropped and re-created: forward_origins {before} -> {after}, which pglogical cannot "
                    f"alter; the new subscription copies {q(lc.provider)}'s rows again, then run "
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
                    f"replication set {q(s.name)} is dropped on every node with its "
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
                    f"{q(t.table)} leaves set {q(t.set_name)} on every node: its changes stop flowing "
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
                    f"{q(edit.table)} in set {q(edit.set_name)} changes its {what}: {'; '.join(effects)}; "
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
                    f"{q(t.table)} joins set {q(t.set_name)}: every upstream node copies its filtered rows "
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
                    f"{q(link.subscriber)} subscribes to {q(link.provider)} and copies the rows of every "
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
                        f"set {q(field.subject)} now replicates TRUNCATE: a truncate at any node empties "
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
                        f"the engine changes from {q(setting.before or '')} to {q(setting.after or '')}: "
                        "every replication object is built anew"
                    ),
                )
            )
    return risks


def sort_risks(risks: list[Risk]) -> tuple[Risk, ...]:
    return tuple(sorted(set(risks), key=_risk_key))


def _risk_key(risk: Risk) -> tuple[int, str, str]:
    return (_ORDER[risk.kind], risk.subject, risk.message)
