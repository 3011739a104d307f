"""Native engine switch: one edge handed from pglogical to a native subscription, losing nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from reconciler.actions import DropSubscription, SwitchSubscription
from reconciler.engines import ALREADY, Outcome, ProviderConn, Result, run
from reconciler.engines import pglogical as pglogical_engine
from reconciler.engines.native_statements import (
    advance_origin_sql,
    create_subscription_sql,
    drop_subscription_sql,
    enable_sql,
)
from reconciler.errors import ApplyError
from reconciler.inspect import native_point as live
from reconciler.inspect import pglogical_point
from reconciler.model import Subscription

Conn = psycopg.Connection[Any]

# How long the pglogical subscription may take to apply past the native
# slot's starting point, and to stop once disabled.
SWITCH_TIMEOUT = 60.0


def switch(conn: Conn, action: SwitchSubscription, provider_conn: ProviderConn | None) -> Outcome:
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
    Every step re-reads what is done, so a killed switch is completed by the
    next run. The one action whose statements cannot all be written before it
    runs: P is known only at step 3 (`statements` shows it as a placeholder).
    """
    wanted, old = action.after, action.before
    pgl = pglogical_point.subscription(conn, old.name) if live.has_pglogical(conn) else None
    current = live.subscription(conn, wanted.name)
    if pgl is None:
        if current is None:
            refuse_under_pglogical(conn, action.node)
            run(conn, [create_subscription_sql(wanted, copy_data=False)])
            return Outcome(Result.DONE, " (no pglogical subscription left)")
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
        return Outcome(Result.DONE, " (the native subscription had taken over; pglogical's was dropped)")
    pconn = provider_conn(wanted.provider_node) if provider_conn is not None else None
    if pconn is None:
        raise ApplyError(f"provider {wanted.provider_node} is unreachable: the switch needs it")
    refuse_under_pglogical(conn, action.node)
    if current is None:
        current = _create_disabled(conn, wanted)
    remade = ""
    if live.origin_exists(pconn, current.origin):
        if live.origin_lsn(conn, current.origin) not in (None, "0/0"):
            # It applied changes once: made again, it would forget how far.
            raise ApplyError(
                f"{wanted.provider_node} holds a replication origin named {current.origin}, like the"
                f" disabled subscription {wanted.name!r}, which has applied changes before: drop one of"
                " them by hand, then run verify; nothing was switched on"
            )
        # Made again under a new oid: see _create_disabled.
        remade = f"; made again, {current.origin} being an origin name on {wanted.provider_node}"
        run(conn, [drop_subscription_sql(wanted.name)])
        current = _create_disabled(conn, wanted)
        if live.origin_exists(pconn, current.origin):
            raise ApplyError(
                f"{wanted.provider_node} holds a replication origin named {current.origin}, like the new"
                f" subscription {wanted.name!r}: pglogical would forward changes under that name and crash"
                " this server; nothing was switched on"
            )
    native_slot = live.slot_position(pconn, current.slot_name or wanted.name)
    if native_slot is None or native_slot.confirmed_flush_lsn is None:
        raise ApplyError(f"slot {current.slot_name} is missing on {wanted.provider_node}")
    start = native_slot.confirmed_flush_lsn
    if not _pglogical_confirmed(pconn, pgl.slot_name, start):
        if not pgl.enabled:
            # Stopped before the native slot began (by hand, or a run killed
            # right after disabling it): let it catch up first, or the
            # changes in between would be lost.
            run(conn, [_pglogical_call("alter_subscription_enable", old.name)])
        _wait(
            lambda: _pglogical_confirmed(pconn, pgl.slot_name, start),
            f"pglogical subscription {old.name} to apply up to {start}",
        )
    run(conn, [_pglogical_call("alter_subscription_disable", old.name)])
    _wait(lambda: not _slot_active(pconn, pgl.slot_name), f"pglogical subscription {old.name} to stop")
    position = live.origin_lsn(conn, pgl.slot_name)
    if position is not None:
        run(conn, [advance_origin_sql(wanted.name, position)])
    run(conn, [enable_sql(wanted.name, True)])
    pglogical_engine.execute(
        conn, DropSubscription(node=action.node, name=old.name, provider_node=old.provider_node)
    )
    note = f" (native starts after {position or start}; pglogical applied everything before{remade})"
    return Outcome(Result.DONE, note)


def refuse_under_pglogical(conn: Conn, node: str) -> None:
    """No native subscription in a database that pglogical subscribers still stream from.

    Changes it applied would be forwarded to them under its origin's name
    (pg_<oid>), and a pglogical 2.4 subscriber whose server has an origin of
    that name crashes (see _create_disabled). Engine switches go top down
    for that reason (apply/graph.py); this check holds when they cannot (an
    apply limited with --node, a subscriber's switch that failed or was held
    back, a new edge planned with the switch). Raises before anything changed.
    """
    slots = live.pglogical_subscriber_slots(conn)
    if slots:
        raise ApplyError(
            f"{node} still feeds pglogical subscriber(s) (slot {', '.join(slots)}): a native subscription"
            " here would have pglogical forward its changes under a pg_<oid> origin name, which crashes"
            " pglogical's apply worker on a server holding that name; switch the subscribers of"
            f" {node} first (apply their nodes too), then rerun"
        )


def _create_disabled(conn: Conn, wanted: Subscription) -> live.NativeSubscription:
    """The edge's native subscription, disabled, without copy; its origin is pg_<its oid>.

    While this node's pglogical subscription still runs, its provider forwards
    every change under the name of the origin it came through there. A name
    equal to this subscription's origin makes pglogical 2.4's apply worker
    advance that origin outside a transaction (pglogical_apply.c,
    handle_commit) and crash with signal 11, restarting this whole server
    again and again (measured). Switching subscribers before their providers
    (apply/graph.py) keeps pg_* names away from pglogical; the caller checks
    the provider's origins all the same (a network left half-switched).
    """
    run(conn, [create_subscription_sql(wanted, copy_data=False, enabled=False)])
    current = live.subscription(conn, wanted.name)
    if current is None:
        raise ApplyError(f"subscription {wanted.name!r} vanished after creation")
    return current


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
