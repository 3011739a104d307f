"""Native engine (PostgreSQL 15+ publications, subscriptions): typed actions run idempotently on a node.

`statements` (native_statements) is pure and shows what an action runs given
the state the plan saw. `execute` re-reads the node first and runs only what
is still missing, so an apply killed half-way is completed by the next run.
CREATE/DROP SUBSCRIPTION and SET PUBLICATION with refresh cannot run inside a
transaction block: they run on the autocommit connection one by one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from reconciler.actions import (
    Action,
    AddTable,
    AlterSet,
    AlterSubscription,
    CreateSet,
    CreateSubscription,
    DropSet,
    DropSlot,
    DropSubscription,
    RefreshSubscription,
    RemoveTable,
    ReplaceSubscription,
    ReplaceTable,
    SetReplicaIdentity,
    SwitchSubscription,
)
from reconciler.engines import ALREADY, DONE, ProviderConn, pglogical_live
from reconciler.engines import native_live as live
from reconciler.engines import pglogical as pglogical_engine
from reconciler.engines.native_statements import (
    add_table_sql,
    advance_origin_sql,
    alter_publication_sql,
    alter_subscription_sql,
    create_publication_sql,
    create_subscription_sql,
    detach_slot_sql,
    drop_publication_sql,
    drop_subscription_sql,
    enable_sql,
    refresh_sql,
    remove_table_sql,
    replica_identity_sql,
    statements,
    table_ident,
)
from reconciler.errors import ApplyError
from reconciler.inspect.native import ALL_TABLES, SCHEMA_PREFIX
from reconciler.model import ReplicationSet, SetTable, Subscription
from reconciler.row_filter import FilterRefused, filter_sql
from reconciler.secrets import redact_text
from reconciler.topology import FORWARD_ALL

__all__ = ["ALREADY", "DONE", "execute", "statements"]

Conn = psycopg.Connection[Any]

# Engine switch: how long the pglogical subscription may take to apply
# past the native slot's starting point, and to stop once disabled.
SWITCH_TIMEOUT = 60.0


def execute(conn: Conn, action: Action, *, provider_conn: ProviderConn | None = None) -> str:
    """Run `action` on its node; a one-line outcome, or ApplyError naming node, action and cause."""
    try:
        return _execute(conn, action, provider_conn)
    except (ApplyError, FilterRefused) as exc:
        raise ApplyError(_failure(action, str(exc))) from exc
    except psycopg.Error as exc:
        raise ApplyError(_failure(action, pglogical_live.pg_message(exc))) from exc


def _failure(action: Action, message: str) -> str:
    # subconninfo may carry a password someone wrote by hand; errors may quote it.
    return redact_text(f"{action.node}: {action.symbol} {action.describe()}: {message}")


def _run(conn: Conn, statements: list[sql.Composed]) -> None:
    for statement in statements:
        conn.execute(statement)


def _execute(conn: Conn, action: Action, provider_conn: ProviderConn | None) -> str:
    match action:
        case CreateSet():
            return _create_set(conn, action.set)
        case AlterSet():
            return _alter_set(conn, action.after)
        case DropSet():
            if live.publication(conn, action.name) is None:
                return ALREADY
            _run(conn, [drop_publication_sql(action.name)])
            return DONE
        case SetReplicaIdentity():
            if live.replica_identity(conn, action.table) == action.after:
                return ALREADY
            with conn.transaction():
                _run(conn, replica_identity_sql(action.table, action.after))
            return DONE
        case AddTable():
            return _add_table(conn, action)
        case ReplaceTable():
            return _replace_table(conn, action)
        case RemoveTable():
            return _remove_table(conn, action)
        case CreateSubscription():
            return _create_subscription(conn, action.subscription, copy_data=True)
        case AlterSubscription():
            return _alter_subscription(conn, action.after)
        case RefreshSubscription():
            if live.subscription(conn, action.name) is None:
                raise ApplyError(f"subscription {action.name!r} does not exist")
            _run(conn, [refresh_sql(action.name)])
            return DONE
        case ReplaceSubscription():
            return _replace_subscription(conn, action, provider_conn)
        case SwitchSubscription():
            return _switch(conn, action, provider_conn)
        case DropSubscription():
            return _drop_subscription(conn, action, provider_conn)
        case DropSlot():
            return pglogical_engine.execute(conn, action, provider_conn=provider_conn)
    raise ApplyError(f"{action.kind} does not exist in the native engine (it has no nodes)")


# -- publications ----------------------------------------------------------------


def _create_set(conn: Conn, wanted: ReplicationSet) -> str:
    current = live.publication(conn, wanted.name)
    if current is None:
        _run(conn, [create_publication_sql(wanted)])
        return DONE
    if current.set.operations() == wanted.operations():
        return ALREADY
    _run(conn, [alter_publication_sql(wanted)])
    return f"{DONE} (the publication existed with other operations; they were set)"


def _alter_set(conn: Conn, wanted: ReplicationSet) -> str:
    current = live.publication(conn, wanted.name)
    if current is None:
        raise ApplyError(f"publication {wanted.name!r} does not exist")
    if current.set.operations() == wanted.operations():
        return ALREADY
    _run(conn, [alter_publication_sql(wanted)])
    return DONE


def _add_table(conn: Conn, action: AddTable) -> str:
    current_pub = live.publication(conn, action.set_name)
    if current_pub is None:
        raise ApplyError(f"publication {action.set_name!r} does not exist")
    note = ""
    if current_pub.all_tables:
        # PostgreSQL cannot narrow a FOR ALL TABLES publication (no ALTER):
        # re-create it empty with the same operations, in one transaction.
        with conn.transaction():
            _run(conn, [drop_publication_sql(action.set_name), create_publication_sql(current_pub.set)])
        note = " (the FOR ALL TABLES publication was re-created with only its declared tables)"
    current = live.publication_table(conn, action.set_name, action.table)
    if current is None:
        _run(conn, [add_table_sql(action.set_name, action.table, action.spec)])
        return DONE + note
    if _same_table(conn, action.table, current, action.spec):
        return ALREADY
    return f"{ALREADY} (in the publication with another filter or column list: the next plan shows it)"


def _replace_table(conn: Conn, action: ReplaceTable) -> str:
    current = live.publication_table(conn, action.set_name, action.table)
    if current is not None and _same_table(conn, action.table, current, action.after):
        return ALREADY
    stmts = [] if current is None else [remove_table_sql(action.set_name, action.table)]
    stmts.append(add_table_sql(action.set_name, action.table, action.after))
    # One transaction: decoding reads publications with a historic snapshot,
    # so every change is published under either the old or the new filter.
    with conn.transaction():
        _run(conn, stmts)
    return DONE


def _remove_table(conn: Conn, action: RemoveTable) -> str:
    if action.table == ALL_TABLES:
        pub = live.publication(conn, action.set_name)
        if pub is not None and pub.all_tables:
            with conn.transaction():
                _run(conn, [drop_publication_sql(action.set_name), create_publication_sql(pub.set)])
            return f"{DONE} (re-created without FOR ALL TABLES)"
        return ALREADY
    if action.table.startswith(SCHEMA_PREFIX):
        try:
            _run(conn, [remove_table_sql(action.set_name, action.table)])
        except pgerrors.UndefinedObject:
            return ALREADY
        return DONE
    if live.publication_table(conn, action.set_name, action.table) is None:
        return ALREADY
    _run(conn, [remove_table_sql(action.set_name, action.table)])
    return DONE


def _same_table(conn: Conn, table: str, current: SetTable, wanted: SetTable) -> bool:
    """Whether the membership is the wanted one, comparing filters as PostgreSQL normalises them."""
    wanted_columns = tuple(sorted(wanted.columns)) if wanted.columns is not None else None
    current_columns = tuple(sorted(current.columns)) if current.columns is not None else None
    if current_columns != wanted_columns:
        return False
    if current.row_filter == wanted.row_filter:
        return True
    if current.row_filter is None or wanted.row_filter is None:
        return False
    return current.row_filter == _normalised_filter(conn, table, wanted.row_filter)


def _normalised_filter(conn: Conn, table: str, row_filter: str) -> str | None:
    """pg_get_expr of the filter as a CHECK on a temporary copy of the table, always rolled back.

    A publication WHERE deparses exactly like a CHECK constraint (measured:
    `approved`, `(status = 'approved'::text)`), the same probe inspection uses.
    The filter goes in as row_filter.filter_sql writes it, never as given.
    """
    text = filter_sql(row_filter, server_forms=True)
    with conn.transaction(force_rollback=True):
        conn.execute(
            sql.SQL("CREATE TEMP TABLE reconcile_filter_probe (LIKE {table})").format(
                table=table_ident(table)
            )
        )
        conn.execute(
            sql.SQL(
                "ALTER TABLE pg_temp.reconcile_filter_probe ADD CONSTRAINT p CHECK ({f}) NOT VALID"
            ).format(f=sql.SQL(text))
        )
        row = conn.execute(
            sql.SQL(
                "SELECT pg_get_expr(conbin, conrelid) FROM pg_constraint"
                " WHERE conrelid = 'pg_temp.reconcile_filter_probe'::regclass AND conname = 'p'"
            )
        ).fetchone()
    return None if row is None else str(row[0])


# -- subscriptions ------------------------------------------------------------------


def _as_model(current: live.NativeSubscription, wanted: Subscription) -> Subscription:
    return Subscription(
        name=current.name,
        provider_node=wanted.provider_node,
        provider_dsn=current.conninfo,
        replication_sets=current.publications,
        forward_origins=FORWARD_ALL,
        enabled=current.enabled,
    )


def _create_subscription(conn: Conn, wanted: Subscription, *, copy_data: bool) -> str:
    current = live.subscription(conn, wanted.name)
    if current is not None:
        if not alter_subscription_sql(_as_model(current, wanted), wanted):
            return ALREADY
        raise ApplyError(
            f"subscription {wanted.name!r} exists with other attributes; the next plan shows how"
        )
    # Not in a transaction block: CREATE SUBSCRIPTION creates the provider's slot.
    _run(conn, [create_subscription_sql(wanted, copy_data=copy_data)])
    return DONE


def _alter_subscription(conn: Conn, wanted: Subscription) -> str:
    current = live.subscription(conn, wanted.name)
    if current is None:
        raise ApplyError(f"subscription {wanted.name!r} does not exist")
    stmts = alter_subscription_sql(_as_model(current, wanted), wanted)
    if not stmts:
        return ALREADY
    _run(conn, stmts)
    return DONE


def _replace_subscription(conn: Conn, action: ReplaceSubscription, provider_conn: ProviderConn | None) -> str:
    current = live.subscription(conn, action.after.name)
    if (
        current is not None
        and action.reason is None
        and not alter_subscription_sql(_as_model(current, action.after), action.after)
    ):
        return ALREADY
    notes = []
    for name in sorted({action.before.name, action.after.name}):
        note = _drop_native(conn, name, action.before.provider_node, provider_conn)
        if note and note != DONE:
            notes.append(note)
    # No initial copy: the subscriber holds the provider's older rows and a
    # COPY would fail on their keys; `reconcile verify --repair` fills the gap.
    outcome = _create_subscription(conn, action.after, copy_data=False)
    return "; ".join([outcome, *notes, "rows changed meanwhile need `reconcile verify --repair`"])


def _drop_subscription(conn: Conn, action: DropSubscription, provider_conn: ProviderConn | None) -> str:
    """Drop the native subscription of that name, and a pglogical one (engine switch leftovers)."""
    outcomes = []
    native = _drop_native(conn, action.name, action.provider_node, provider_conn)
    if native is not None:
        outcomes.append(native)
    if live.has_pglogical(conn) and pglogical_live.subscription(conn, action.name) is not None:
        outcomes.append("pglogical: " + pglogical_engine.execute(conn, action, provider_conn=provider_conn))
    return "; ".join(outcomes) or ALREADY


def _drop_native(conn: Conn, name: str, provider: str, provider_conn: ProviderConn | None) -> str | None:
    """DROP SUBSCRIPTION; None if there was none.

    DROP SUBSCRIPTION drops the provider's slot over the subscription's own
    connection and fails when the provider is unreachable. Then the slot is
    detached (disable, slot_name = NONE) and the subscription dropped: the
    slot stays on the provider, is dropped over the reconciler's connection
    when it has one, and otherwise shows as an orphaned slot until cleaned.
    """
    current = live.subscription(conn, name)
    if current is None:
        return None
    try:
        _run(conn, [drop_subscription_sql(name)])
        return DONE
    except pgerrors.ConnectionFailure as exc:
        reason = pglogical_live.pg_message(exc)
    _run(conn, detach_slot_sql(name))
    slot = current.slot_name or name
    pconn = provider_conn(provider) if provider_conn is not None else None
    if pconn is not None:
        try:
            pglogical_engine.execute(pconn, DropSlot(node=provider, slot=slot))
            return f"{DONE} (slot {slot} on provider {provider} dropped over the admin connection)"
        except ApplyError as exc2:
            reason = str(exc2)
    return (
        f"{DONE}; slot {slot} left on provider {provider} ({redact_text(reason)}):"
        " it will show as an orphaned slot until dropped"
    )


# -- engine switch ------------------------------------------------------------------


def _switch(conn: Conn, action: SwitchSubscription, provider_conn: ProviderConn | None) -> str:
    """Hand one edge over from pglogical to native without losing or doubling a change.

    1. The native subscription is created disabled, without copy: its new
       slot on the provider starts at LSN S (the slot's confirmed_flush_lsn).
    2. Wait until the pglogical subscription confirmed S: every transaction
       that committed before S is applied by pglogical.
    3. Disable the pglogical subscription and wait until its worker left the
       provider (slot inactive); its replication origin (named after its
       slot) then holds P, the end of the last transaction it applied.
    4. Advance the native subscription's origin to P and enable it: the
       provider starts decoding at max(P, S) and skips every transaction that
       ended at or before P. Nothing between is missed, nothing applied twice.
    5. Drop the pglogical subscription (and its slot on the provider).
    Every step re-reads what is done, so a killed switch is completed by the next run.
    """
    wanted, old = action.after, action.before
    pgl = pglogical_live.subscription(conn, old.name) if live.has_pglogical(conn) else None
    current = live.subscription(conn, wanted.name)
    if pgl is None:
        if current is None:
            return _create_subscription(conn, wanted, copy_data=False) + " (no pglogical subscription left)"
        return ALREADY
    if current is not None and current.enabled:
        if pgl.enabled:
            raise ApplyError(
                f"native and pglogical subscriptions {wanted.name!r} are both enabled: changes may apply"
                " twice; disable one by hand and run verify"
            )
        pglogical_engine.execute(
            conn, DropSubscription(node=action.node, name=old.name, provider_node=old.provider_node)
        )
        return f"{DONE} (the native subscription had taken over; pglogical's was dropped)"
    pconn = provider_conn(wanted.provider_node) if provider_conn is not None else None
    if pconn is None:
        raise ApplyError(f"provider {wanted.provider_node} is unreachable: the switch needs it")
    if current is None:
        _run(conn, [create_subscription_sql(wanted, copy_data=False, enabled=False)])
        current = live.subscription(conn, wanted.name)
        if current is None:
            raise ApplyError(f"subscription {wanted.name!r} vanished after creation")
    native_slot = live.slot_position(pconn, current.slot_name or wanted.name)
    if native_slot is None or native_slot.confirmed_flush_lsn is None:
        raise ApplyError(f"slot {current.slot_name} is missing on {wanted.provider_node}")
    start = native_slot.confirmed_flush_lsn
    if not _pglogical_confirmed(pconn, pgl.slot_name, start):
        if not pgl.enabled:
            # Stopped before the native slot began (by hand, or a run killed
            # right after disabling it): let it catch up first, or the
            # changes in between would be lost.
            _run(conn, [_pglogical_call("alter_subscription_enable", old.name)])
        _wait(
            lambda: _pglogical_confirmed(pconn, pgl.slot_name, start),
            f"pglogical subscription {old.name} to apply up to {start}",
        )
    _run(conn, [_pglogical_call("alter_subscription_disable", old.name)])
    _wait(lambda: not _slot_active(pconn, pgl.slot_name), f"pglogical subscription {old.name} to stop")
    position = live.origin_lsn(conn, pgl.slot_name)
    if position is not None:
        _run(conn, [advance_origin_sql(wanted.name, position)])
    _run(conn, [enable_sql(wanted.name, True)])
    pglogical_engine.execute(
        conn, DropSubscription(node=action.node, name=old.name, provider_node=old.provider_node)
    )
    return f"{DONE} (native starts after {position or start}; pglogical applied everything before)"


def _pglogical_call(function: str, name: str) -> sql.Composed:
    # immediate := true: the worker stops (or starts) now, not at some later commit.
    return sql.SQL("SELECT pglogical.{function}({name}, immediate := true)").format(
        function=sql.Identifier(function), name=sql.Literal(name)
    )


def _pglogical_confirmed(pconn: Conn, slot: str, target: str) -> bool:
    found = live.slot_position(pconn, slot)
    if found is None:
        raise ApplyError(f"pglogical slot {slot} is missing on the provider: the switch cannot hand over")
    return found.confirmed_flush_lsn is not None and live.lsn_reached(
        pconn, found.confirmed_flush_lsn, target
    )


def _slot_active(pconn: Conn, slot: str) -> bool:
    found = live.slot_position(pconn, slot)
    return found is not None and found.active


def _wait(check: Callable[[], bool], what: str, timeout: float = SWITCH_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ApplyError(f"timed out after {timeout:g} s waiting for {what}; nothing was switched on")
        time.sleep(0.1)
