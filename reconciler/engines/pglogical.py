"""pglogical engine: runs each typed action's statements on its node, once, after checking what is done.

`statements` (pglogical_statements) is the only place the engine builds SQL.
`execute` reads the node first (pglogical_live): when the action is already
done it runs nothing, else exactly `statements(action)`, so an apply killed
half-way is completed by the next run. It trusts the action for what the
node looked like: apply checked each node's catalog fingerprint under its
lock, so the plan's `before` is the live state. Statements that must not be
seen half-done run in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, assert_never

import psycopg
from psycopg import errors as pgerrors
from psycopg.errors import Diagnostic

from reconciler.actions import (
    Action,
    AddTable,
    AlterSet,
    AlterSubscription,
    ChangeNodeDsn,
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
    SetReplicaIdentity,
    SetWalKeepSize,
    SwitchSubscription,
)
from reconciler.engines import ALREADY, DONE, Outcome, ProviderConn, Result, pg_message, run
from reconciler.engines.pglogical_statements import statements, unsupported
from reconciler.engines.settings import set_wal_keep_size
from reconciler.errors import ApplyError
from reconciler.inspect import pglogical_point as live
from reconciler.inspect.pglogical_point import Conn
from reconciler.model import SetTable, Subscription
from reconciler.row_filter import FilterRefused
from reconciler.secrets import scrub

__all__ = ["execute", "statements", "supports"]

# A walsender that was just terminated needs a moment to release its slot.
SLOT_RELEASE_TIMEOUT = 10.0


def supports(action: Action) -> str | None:
    """None when pglogical can run `action`, else why not (a plan-time blocker)."""
    return unsupported(action)


def execute(
    conn: psycopg.Connection[Any],
    action: Action,
    *,
    provider_conn: ProviderConn | None = None,
) -> Outcome:
    """Run `action` on its node; its outcome, or ApplyError naming node, action and cause."""
    try:
        return _execute(conn, action, provider_conn)
    except (ApplyError, FilterRefused) as exc:
        raise ApplyError(_failure(action, str(exc))) from exc
    except psycopg.Error as exc:
        raise ApplyError(_failure(action, pg_message(exc))) from exc


def _failure(action: Action, message: str) -> str:
    return scrub(f"{action.node}: {action.symbol} {action.describe()}: {message}")


def _run(conn: Conn, action: Action, *, transaction: bool = False) -> None:
    """Exactly the action's statements, in one transaction when asked."""
    if transaction:
        with conn.transaction():
            run(conn, statements(action))
    else:
        run(conn, statements(action))


def _execute(conn: Conn, action: Action, provider_conn: ProviderConn | None) -> Outcome:
    match action:
        case CreateNode():
            return _create_node(conn, action)
        case ChangeNodeDsn():
            return _change_node_dsn(conn, action)
        case DropNode():
            if not live.node_interfaces(conn, action.name):
                return ALREADY
            _run(conn, action)
            return DONE
        case CreateSet() | AlterSet():
            return _set(conn, action)
        case DropSet():
            if live.replication_set(conn, action.name) is None:
                return ALREADY
            _run(conn, action)
            return DONE
        case AddTable():
            return _add_table(conn, action)
        case ReplaceTable():
            return _replace_table(conn, action)
        case RemoveTable():
            if live.set_table(conn, action.set_name, action.table) is None:
                return ALREADY
            _run(conn, action)
            return DONE
        case CreateSubscription():
            return _create_subscription(conn, action, provider_conn)
        case AlterSubscription():
            return _alter_subscription(conn, action, provider_conn)
        case ReplaceSubscription():
            return _replace_subscription(conn, action, provider_conn)
        case DropSubscription():
            return _drop_subscription(conn, action, provider_conn)
        case DropSlot():
            return drop_slot(conn, action)
        case SetWalKeepSize():
            return set_wal_keep_size(conn, action)
        case SetReplicaIdentity() | SwitchSubscription() | RefreshSubscription():
            raise ApplyError(str(unsupported(action)))
        case _:
            assert_never(action)


def _create_node(conn: Conn, action: CreateNode) -> Outcome:
    node = live.local_node(conn)
    if node is not None:
        if node.name != action.name:
            raise ApplyError(f"this database already is pglogical node {node.name!r}")
        if node.dsn != action.dsn:
            return Outcome(Result.ALREADY, " (its interface dsn differs: the next plan shows it)")
        return ALREADY
    _run(conn, action)
    return DONE


def _change_node_dsn(conn: Conn, action: ChangeNodeDsn) -> Outcome:
    node = live.local_node(conn)
    if node is None or node.name != action.name:
        raise ApplyError(f"this database is not pglogical node {action.name!r}")
    if node.dsn == action.after:
        return ALREADY
    _run(conn, action, transaction=True)
    return DONE


def _set(conn: Conn, action: CreateSet | AlterSet) -> Outcome:
    wanted = action.set if isinstance(action, CreateSet) else action.after
    current = live.replication_set(conn, wanted.name)
    if isinstance(action, AlterSet) and current is None:
        raise ApplyError(f"replication set {action.name!r} does not exist")
    if current is not None:
        if current.operations() == wanted.operations():
            return ALREADY
        if isinstance(action, CreateSet):
            return Outcome(Result.ALREADY, " (the set exists with other flags: the next plan shows it)")
    _run(conn, action)
    return DONE


def _add_table(conn: Conn, action: AddTable) -> Outcome:
    current = live.set_table(conn, action.set_name, action.table)
    if current is None:
        try:
            _run(conn, action)
            return DONE
        except pgerrors.UniqueViolation:
            # replication_set_table_pkey: a concurrent run added it meanwhile.
            current = live.set_table(conn, action.set_name, action.table)
            if current is None:
                raise
    if _same_table(current, action.spec):
        return ALREADY
    return Outcome(Result.ALREADY, " (in the set with another filter or column list: the next plan shows it)")


def _replace_table(conn: Conn, action: ReplaceTable) -> Outcome:
    current = live.set_table(conn, action.set_name, action.table)
    if current is not None and _same_table(current, action.after):
        return ALREADY
    # pglogical has no alter for a table in a set; remove + add in one
    # transaction leaves no window (decoding reads the catalogs with a
    # historic snapshot). The remove is guarded: a table already out of the
    # set (a replace done half by hand) is just added.
    _run(conn, action, transaction=True)
    return DONE


def _same_table(current: SetTable, wanted: SetTable) -> bool:
    """Whether the live membership is the wanted one.

    Both filters are PostgreSQL's normal forms: the live one read back, the
    wanted one normalised by inspection before the diff (filter_cache), so
    text equality is the comparison; no probe here.
    """
    wanted_columns = tuple(sorted(wanted.columns)) if wanted.columns is not None else None
    return current.columns == wanted_columns and current.row_filter == wanted.row_filter


def _same_subscription(a: Subscription, b: Subscription) -> bool:
    return (
        a.provider_node == b.provider_node
        and a.provider_dsn == b.provider_dsn
        and sorted(a.replication_sets) == sorted(b.replication_sets)
        and a.forward_origins == b.forward_origins
        and a.enabled == b.enabled
    )


def _create_subscription(
    conn: Conn, action: CreateSubscription, provider_conn: ProviderConn | None
) -> Outcome:
    wanted = action.subscription
    current = live.subscription(conn, wanted.name)
    if current is not None:
        if _same_subscription(current, wanted):
            return ALREADY
        raise ApplyError(
            f"subscription {wanted.name!r} exists with other attributes; the next plan shows how"
        )
    note = _check_stale_provider_record(conn, wanted)
    _check_provider_sets(provider_conn, wanted.provider_node, wanted.replication_sets)
    _run(conn, action, transaction=True)
    return Outcome(Result.DONE, note)


def _check_stale_provider_record(conn: Conn, wanted: Subscription, dropping: int = 0) -> str:
    """A leftover record of the provider node with another DSN: dropped by the statements, or refused.

    create_subscription refuses with `dsn ... points to existing node ... with
    different dsn` when this database already holds a record of the provider
    node whose default interface has another DSN. One used by nothing is
    dropped (drop_stale_provider_sql); one still in use is reported, not touched.
    `dropping`: subscriptions to that node the same statements drop first (a replace).
    """
    interfaces = live.node_interfaces(conn, wanted.provider_node)
    default = next((i for i in interfaces if i.name == wanted.provider_node), None)
    if default is None or default.dsn == wanted.provider_dsn:
        return ""
    if default.is_local:
        raise ApplyError(f"provider node {wanted.provider_node!r} is this database's own node")
    if default.subscriptions > dropping:
        raise ApplyError(
            f"this node holds a record of provider {wanted.provider_node!r} with another dsn,"
            f" used by {default.subscriptions - dropping} other subscription(s)"
        )
    return f" (a stale record of node {wanted.provider_node} with another dsn was dropped first)"


def _check_provider_sets(provider_conn: ProviderConn | None, provider: str, sets: tuple[str, ...]) -> None:
    """Refuse sets the provider lacks.

    pglogical does not check set names against the provider: a missing set
    leaves the subscription `down`.
    """
    if provider_conn is None:
        return
    pconn = provider_conn(provider)
    if pconn is None:
        raise ApplyError(
            f"provider {provider} does not answer on its admin DSN, so its replication sets cannot be"
            " checked; nothing was changed for this subscription"
        )
    missing = sorted(set(sets) - set(live.provider_sets(pconn, sets)))
    if missing:
        raise ApplyError(
            f"provider {provider} lacks replication set(s) {', '.join(missing)}:"
            " a subscription to them would stay down"
        )


def _alter_subscription(conn: Conn, action: AlterSubscription, provider_conn: ProviderConn | None) -> Outcome:
    wanted = action.after
    current = live.subscription(conn, wanted.name)
    if current is None:
        raise ApplyError(f"subscription {wanted.name!r} does not exist")
    if current.provider_node != wanted.provider_node:
        raise ApplyError(
            f"subscription {wanted.name!r} now points at node {current.provider_node!r}:"
            " it needs to be replaced"
        )
    if _same_subscription(current, wanted) or not statements(action):
        return ALREADY
    added = tuple(sorted(set(wanted.replication_sets) - set(action.before.replication_sets)))
    _check_provider_sets(provider_conn, wanted.provider_node, added)
    _run(conn, action, transaction=True)
    return DONE


def _replace_subscription(
    conn: Conn, action: ReplaceSubscription, provider_conn: ProviderConn | None
) -> Outcome:
    current = live.subscription(conn, action.after.name)
    if current is not None and _same_subscription(current, action.after):
        # Same attributes: done already, unless the replace exists because the
        # provider's slot is lost or gone; then done once that slot is usable.
        provider = action.after.provider_node
        if action.reason is None or _slot_usable(provider_conn, provider, current.slot_name):
            return ALREADY
    # The provider must offer the sets before anything is dropped: a replace
    # that fails half-way must not leave the subscriber without its subscription.
    _check_provider_sets(provider_conn, action.after.provider_node, action.after.replication_sets)
    dropped = {name: live.subscription(conn, name) for name in {action.before.name, action.after.name}}
    dropping = sum(
        1 for d in dropped.values() if d is not None and d.provider_node == action.after.provider_node
    )
    note = _check_stale_provider_record(conn, action.after, dropping)
    # One transaction: if the create fails (or the process dies), the drop of
    # the local subscription rolls back too; only the provider's slot may be
    # gone, which the next plan sees and replaces again, never with a COPY.
    with _slot_warnings(conn) as warnings, conn.transaction():
        run(conn, statements(action))
    notes = [
        "done" + _left_slot(sub, provider_conn)
        for _, sub in sorted(dropped.items())
        if sub is not None and _slot_left(warnings)
    ]
    notes.append("rows changed meanwhile need `reconcile verify --repair`")
    return Outcome(Result.DONE, note + "".join(f"; {n}" for n in notes))


def _slot_usable(provider_conn: ProviderConn | None, provider: str, slot_name: str) -> bool:
    """True when the provider answers and holds the slot, not invalidated (wal_status lost)."""
    pconn = provider_conn(provider) if provider_conn is not None else None
    if pconn is None:
        return False
    found = live.slot(pconn, slot_name)
    return found is not None and found.wal_status != "lost"


@contextmanager
def _slot_warnings(conn: Conn) -> Iterator[list[str]]:
    """The WARNINGs raised while the statements run: pglogical only warns when it cannot drop a slot."""
    warnings: list[str] = []

    def on_notice(diag: Diagnostic) -> None:
        # A Diagnostic is only valid inside the callback: keep its text.
        if diag.severity_nonlocalized == "WARNING":
            warnings.append(diag.message_primary or "")

    conn.add_notice_handler(on_notice)
    try:
        yield warnings
    finally:
        conn.remove_notice_handler(on_notice)


def _slot_left(warnings: list[str]) -> bool:
    return any("could not drop slot" in w for w in warnings)


def _drop_subscription(conn: Conn, action: DropSubscription, provider_conn: ProviderConn | None) -> Outcome:
    """Drop it. pglogical drops the provider's slot over the subscription's DSN; a slot it could not drop is
    dropped over the reconciler's own connection to the provider, else reported."""
    current = live.subscription(conn, action.name)
    if current is None:
        return ALREADY
    with _slot_warnings(conn) as warnings:
        _run(conn, action)
    if not _slot_left(warnings):
        return DONE
    return Outcome(Result.DONE, _left_slot(current, provider_conn))


def _left_slot(current: live.LiveSubscription, provider_conn: ProviderConn | None) -> str:
    """pglogical WARNs "could not drop slot ... on provider" and the slot keeps WAL there forever:
    drop it over the provider connection when there is one (DropSlot's statements), else report it
    (later plans show it as an orphaned slot)."""
    slot, provider = current.slot_name, current.provider_node
    pconn = provider_conn(provider) if provider_conn is not None else None
    if pconn is not None:
        try:
            drop_slot(pconn, DropSlot(node=provider, slot=slot))
            return f" (slot {slot} on provider {provider} dropped over the admin connection)"
        except psycopg.Error as exc:
            reason = pg_message(exc)
    else:
        reason = "provider unreachable"
    return (
        f"; slot {slot} left on provider {provider} ({reason}):"
        " it will show as an orphaned slot until dropped"
    )


def drop_slot(conn: Conn, action: DropSlot) -> Outcome:
    """Drop a slot of this database; a walsender still holding it is terminated first.

    Both engines use this: a slot is a slot. The statements (terminate, drop)
    run again until the walsender let go or the deadline passed.
    """
    deadline = time.monotonic() + SLOT_RELEASE_TIMEOUT
    acted = False
    while True:
        current = live.slot(conn, action.slot)
        if current is None:
            return DONE if acted else ALREADY
        if not current.here:
            raise ApplyError(f"slot {action.slot!r} belongs to database {current.database!r}")
        acted = True
        try:
            _run(conn, action)
            return DONE
        except pgerrors.UndefinedObject:
            return DONE  # gone meanwhile
        except pgerrors.ObjectInUse:
            # The terminated walsender has not exited yet, or the subscriber
            # reconnected at once: try again until the deadline.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
