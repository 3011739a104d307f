"""pglogical engine: each typed action as psycopg.sql statements, executed idempotently on its node.

`statements` is pure: it shows what an action runs, given the state the plan
saw. `execute` re-reads the node's catalogs first and runs only what is still
missing, so an apply killed half-way is completed by the next run. Statements
that must not be seen half-done run in one transaction.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
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
    RemoveTable,
    ReplaceSubscription,
    ReplaceTable,
    SetWalKeepSize,
)
from reconciler.engines import ALREADY, DONE, ProviderConn
from reconciler.engines import pglogical_live as live
from reconciler.engines.pglogical_live import Conn, redact
from reconciler.engines.pglogical_statements import (
    add_interface_sql,
    add_table_sql,
    alter_subscription_sql,
    create_node_sql,
    create_subscription_sql,
    drop_node_sql,
    drop_set_sql,
    drop_slot_sql,
    drop_subscription_sql,
    interface_name,
    point_local_node_sql,
    remove_table_sql,
    set_sql,
    statements,
    terminate_slot_sql,
)
from reconciler.engines.settings import set_wal_keep_size
from reconciler.errors import ApplyError
from reconciler.model import ReplicationSet, SetTable, Subscription
from reconciler.row_filter import FilterRefused

__all__ = ["ALREADY", "DONE", "execute", "statements"]

# A rolled-back set used only to let pglogical normalise a filter text.
PROBE_SET = "reconcile_filter_probe"

# A walsender that was just terminated needs a moment to release its slot.
SLOT_RELEASE_TIMEOUT = 10.0


def execute(
    conn: psycopg.Connection[Any],
    action: Action,
    *,
    provider_conn: ProviderConn | None = None,
) -> str:
    """Run `action` on its node; a one-line outcome, or ApplyError naming node, action and cause."""
    try:
        return _execute(conn, action, provider_conn)
    except (ApplyError, FilterRefused) as exc:
        raise ApplyError(_failure(action, str(exc))) from exc
    except psycopg.Error as exc:
        raise ApplyError(_failure(action, live.pg_message(exc))) from exc


def _failure(action: Action, message: str) -> str:
    return redact(f"{action.node}: {action.symbol} {action.describe()}: {message}")


def _execute(conn: Conn, action: Action, provider_conn: ProviderConn | None) -> str:
    match action:
        case CreateNode():
            return _create_node(conn, action)
        case ChangeNodeDsn():
            return _change_node_dsn(conn, action)
        case DropNode():
            return _flag(live.scalar(conn, drop_node_sql(action.name)))
        case CreateSet():
            return _create_set(conn, action.set)
        case AlterSet():
            return _alter_set(conn, action)
        case DropSet():
            return _flag(live.scalar(conn, drop_set_sql(action.name)))
        case AddTable():
            return _add_table(conn, action)
        case ReplaceTable():
            return _replace_table(conn, action)
        case RemoveTable():
            if live.set_table(conn, action.set_name, action.table) is None:
                return ALREADY
            live.run(conn, [remove_table_sql(action.set_name, action.table)])
            return DONE
        case CreateSubscription():
            return _create_subscription(conn, action.subscription, provider_conn, copy_data=action.copy_data)
        case AlterSubscription():
            return _alter_subscription(conn, action, provider_conn)
        case ReplaceSubscription():
            return _replace_subscription(conn, action, provider_conn)
        case DropSubscription():
            return _drop_subscription(conn, action.name, provider_conn) or ALREADY
        case DropSlot():
            return _drop_slot(conn, action.slot)
        case SetWalKeepSize():
            return set_wal_keep_size(conn, action)
    raise AssertionError(f"unknown action {action!r}")  # pragma: no cover


def _flag(result: object) -> str:
    """pglogical's drop functions with ifexists return whether something was dropped."""
    return DONE if result else ALREADY


def _create_node(conn: Conn, action: CreateNode) -> str:
    node = live.local_node(conn)
    if node is not None:
        if node.name != action.name:
            raise ApplyError(f"this database already is pglogical node {node.name!r}")
        if node.dsn != action.dsn:
            return f"{ALREADY} (its interface dsn differs: the next plan shows it)"
        return ALREADY
    live.run(conn, [create_node_sql(action.name, action.dsn)])
    return DONE


def _change_node_dsn(conn: Conn, action: ChangeNodeDsn) -> str:
    node = live.local_node(conn)
    if node is None or node.name != action.name:
        raise ApplyError(f"this database is not pglogical node {action.name!r}")
    if node.dsn == action.after:
        return ALREADY
    iface, exists = _interface_for(conn, action.name, action.after)
    stmts = [] if exists else [add_interface_sql(action.name, iface, action.after)]
    with conn.transaction():
        live.run(conn, stmts + point_local_node_sql(action.name, iface))
    return DONE


def _interface_for(conn: Conn, node: str, dsn: str) -> tuple[str, bool]:
    """An existing interface of `node` with exactly `dsn`, else the deterministic new name."""
    for iface in live.node_interfaces(conn, node):
        if iface.dsn == dsn:
            return iface.name, True
    return interface_name(node, dsn), False


def _create_set(conn: Conn, wanted: ReplicationSet) -> str:
    current = live.replication_set(conn, wanted.name)
    if current is None:
        live.run(conn, [set_sql("create_replication_set", wanted)])
        return DONE
    if current.operations() == wanted.operations():
        return ALREADY
    live.run(conn, [set_sql("alter_replication_set", wanted)])
    return f"{DONE} (the set existed with other flags; they were set)"


def _alter_set(conn: Conn, action: AlterSet) -> str:
    current = live.replication_set(conn, action.name)
    if current is None:
        raise ApplyError(f"replication set {action.name!r} does not exist")
    if current.operations() == action.after.operations():
        return ALREADY
    live.run(conn, [set_sql("alter_replication_set", action.after)])
    return DONE




def _add_table(conn: Conn, action: AddTable) -> str:
    current = live.set_table(conn, action.set_name, action.table)
    if current is None:
        stmt = add_table_sql(action.set_name, action.table, action.spec, action.synchronize_data)
        try:
            live.run(conn, [stmt])
            return DONE
        except pgerrors.UniqueViolation:
            # replication_set_table_pkey: a concurrent run added it meanwhile.
            current = live.set_table(conn, action.set_name, action.table)
            if current is None:
                raise
    if _same_table(conn, action.table, current, action.spec):
        return ALREADY
    return f"{ALREADY} (in the set with another filter or column list: the next plan shows it)"


def _replace_table(conn: Conn, action: ReplaceTable) -> str:
    current = live.set_table(conn, action.set_name, action.table)
    if current is not None and _same_table(conn, action.table, current, action.after):
        return ALREADY
    stmts = [] if current is None else [remove_table_sql(action.set_name, action.table)]
    stmts.append(add_table_sql(action.set_name, action.table, action.after, False))
    with conn.transaction():
        live.run(conn, stmts)
    return DONE


def _same_table(conn: Conn, table: str, current: SetTable, wanted: SetTable) -> bool:
    """Whether the live membership is the wanted one, comparing filters as PostgreSQL normalises them."""
    wanted_columns = tuple(sorted(wanted.columns)) if wanted.columns is not None else None
    if current.columns != wanted_columns:
        return False
    if current.row_filter == wanted.row_filter:
        return True
    if current.row_filter is None or wanted.row_filter is None:
        return False
    return current.row_filter == _normalised_filter(conn, table, wanted.row_filter)


def _normalised_filter(conn: Conn, table: str, row_filter: str) -> str | None:
    """The text pg_get_expr gives back for `row_filter` once pglogical has installed it.

    Done by pglogical itself in a transaction that is always rolled back (a
    probe set, the table added with the filter, read back): the filter is
    passed as a literal, as row_filter.filter_sql writes it (add_table_sql),
    and is parsed exactly as a real add_table would parse it.
    """
    probe = ReplicationSet(
        name=PROBE_SET, replicate_update=False, replicate_delete=False, replicate_truncate=False
    )
    with conn.transaction(force_rollback=True):
        live.run(
            conn,
            [
                set_sql("create_replication_set", probe),
                add_table_sql(PROBE_SET, table, SetTable(row_filter=row_filter), False),
            ],
        )
        found = live.set_table(conn, PROBE_SET, table)
    return None if found is None else found.row_filter


def _same_subscription(a: Subscription, b: Subscription) -> bool:
    return (
        a.provider_node == b.provider_node
        and a.provider_dsn == b.provider_dsn
        and sorted(a.replication_sets) == sorted(b.replication_sets)
        and a.forward_origins == b.forward_origins
        and a.enabled == b.enabled
    )


def _create_subscription(
    conn: Conn, wanted: Subscription, provider_conn: ProviderConn | None, copy_data: bool = True
) -> str:
    current = live.subscription(conn, wanted.name)
    if current is not None:
        if _same_subscription(current, wanted):
            return ALREADY
        raise ApplyError(
            f"subscription {wanted.name!r} exists with other attributes; the next plan shows how"
        )
    note = _clear_stale_provider_record(conn, wanted)
    _check_provider_sets(provider_conn, wanted.provider_node, wanted.replication_sets)
    with conn.transaction():
        live.run(conn, create_subscription_sql(wanted, copy_data=copy_data))
    return DONE + note


def _clear_stale_provider_record(conn: Conn, wanted: Subscription) -> str:
    """Drop a leftover, unused record of the provider node that has another DSN.

    create_subscription refuses with `dsn ... points to existing node ... with
    different dsn` when this database already holds a record of the provider
    node whose default interface has another DSN. drop_subscription removes
    that record with the provider's last subscription, so a leftover one is
    used by nothing and can go; one still in use is reported, not touched.
    """
    interfaces = live.node_interfaces(conn, wanted.provider_node)
    default = next((i for i in interfaces if i.name == wanted.provider_node), None)
    if default is None or default.dsn == wanted.provider_dsn:
        return ""
    if default.is_local:
        raise ApplyError(f"provider node {wanted.provider_node!r} is this database's own node")
    if default.subscriptions:
        raise ApplyError(
            f"this node holds a record of provider {wanted.provider_node!r} with another dsn,"
            f" used by {default.subscriptions} other subscription(s)"
        )
    live.run(conn, [drop_node_sql(wanted.provider_node)])
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


def _alter_subscription(conn: Conn, action: AlterSubscription, provider_conn: ProviderConn | None) -> str:
    wanted = action.after
    current = live.subscription(conn, wanted.name)
    if current is None:
        raise ApplyError(f"subscription {wanted.name!r} does not exist")
    if current.provider_node != wanted.provider_node:
        raise ApplyError(
            f"subscription {wanted.name!r} now points at node {current.provider_node!r}:"
            " it needs to be replaced"
        )
    iface, exists = _interface_for(conn, wanted.provider_node, wanted.provider_dsn)
    stmts = alter_subscription_sql(current, wanted, iface, add_iface=not exists)
    if not stmts:
        return ALREADY
    added = tuple(sorted(set(wanted.replication_sets) - set(current.replication_sets)))
    _check_provider_sets(provider_conn, wanted.provider_node, added)
    with conn.transaction():
        live.run(conn, stmts)
    return DONE


def _replace_subscription(conn: Conn, action: ReplaceSubscription, provider_conn: ProviderConn | None) -> str:
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
    notes = []
    # One transaction: if the create fails (or the process dies), the drop of
    # the local subscription rolls back too; only the provider's slot may be
    # gone, which the next plan sees and replaces again, never with a COPY.
    with conn.transaction():
        for name in sorted({action.before.name, action.after.name}):
            note = _drop_subscription(conn, name, provider_conn)
            if note and note != DONE:
                notes.append(note)
        # No initial copy: the subscriber holds the provider's older rows and a
        # COPY would fail on their keys; `reconcile verify --repair` fills the gap.
        outcome = _create_subscription(conn, action.after, provider_conn, copy_data=False)
    return "; ".join([outcome, *notes, "rows changed meanwhile need `reconcile verify --repair`"])


def _slot_usable(provider_conn: ProviderConn | None, provider: str, slot_name: str) -> bool:
    """True when the provider answers and holds the slot, not invalidated (wal_status lost)."""
    pconn = provider_conn(provider) if provider_conn is not None else None
    if pconn is None:
        return False
    row = pconn.execute(
        sql.SQL("SELECT wal_status FROM pg_replication_slots WHERE slot_name = {}").format(
            sql.Literal(slot_name)
        )
    ).fetchone()
    return row is not None and row[0] != "lost"


def _drop_subscription(conn: Conn, name: str, provider_conn: ProviderConn | None) -> str | None:
    """Drop it; None if it was not there. Reports a slot pglogical could not drop.

    pglogical drops the provider's slot over the subscription's DSN; if that
    fails it only WARNs ("could not drop slot ... on provider") and the slot
    keeps WAL there forever. The warning is caught from the notices; the slot
    is then dropped over the reconciler's own connection to the provider when
    there is one, else reported (later plans show it as an orphaned slot).
    """
    current = live.subscription(conn, name)
    if current is None:
        return None
    warnings: list[str] = []

    def on_notice(diag: Diagnostic) -> None:
        # A Diagnostic is only valid inside the callback: keep its text.
        if diag.severity_nonlocalized == "WARNING":
            warnings.append(diag.message_primary or "")

    conn.add_notice_handler(on_notice)
    try:
        live.run(conn, [drop_subscription_sql(name)])
    finally:
        conn.remove_notice_handler(on_notice)
    if not any("could not drop slot" in w for w in warnings):
        return DONE
    slot, provider = current.slot_name, current.provider_node
    pconn = provider_conn(provider) if provider_conn is not None else None
    if pconn is not None:
        try:
            _drop_slot(pconn, slot)
            return f"{DONE} (slot {slot} on provider {provider} dropped over the admin connection)"
        except psycopg.Error as exc:
            reason = live.pg_message(exc)
    else:
        reason = "provider unreachable"
    return (
        f"{DONE}; slot {slot} left on provider {provider} ({reason}):"
        " it will show as an orphaned slot until dropped"
    )


def _drop_slot(conn: Conn, slot: str) -> str:
    """Drop a slot of this database; a walsender still holding it is terminated first."""
    deadline = time.monotonic() + SLOT_RELEASE_TIMEOUT
    acted = False
    while True:
        current = live.slot(conn, slot)
        if current is None:
            return DONE if acted else ALREADY
        if not current.here:
            raise ApplyError(f"slot {slot!r} belongs to database {current.database!r}")
        if current.active_pid is not None:
            live.run(conn, [terminate_slot_sql(slot)])
        acted = True
        try:
            live.run(conn, [drop_slot_sql(slot)])
            return DONE
        except pgerrors.UndefinedObject:
            return DONE  # gone meanwhile
        except pgerrors.ObjectInUse:
            # The terminated walsender has not exited yet, or the subscriber
            # reconnected at once: try again until the deadline.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
