"""pglogical engine, subscriptions and slots: create, alter, replace and drop them on a subscriber.

Each function checks what is done, then runs exactly the action's
statements (pglogical_statements.statements) on the node; only a slot that
pglogical could not drop on the provider is dropped there, by DropSlot's own
statements over the provider connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.errors import Diagnostic

from reconciler.actions import (
    AlterSubscription,
    CreateSubscription,
    DropSlot,
    DropSubscription,
    ReplaceSubscription,
)
from reconciler.engines import ALREADY, DONE, Outcome, ProviderConn, Result, pg_message, run
from reconciler.engines.pglogical_statements import enable_subscription_sql, statements
from reconciler.errors import ApplyError
from reconciler.inspect import pglogical_point as live
from reconciler.inspect.pglogical_point import Conn
from reconciler.model import Subscription

# A walsender that was just terminated needs a moment to release its slot.
SLOT_RELEASE_TIMEOUT = 10.0
# A stopped apply worker exits at its next latch wake-up: well under a second.
WORKER_STOP_TIMEOUT = 30.0
# How long a subscription made without a copy waits for its provider's own initial copies.
PROVIDER_COPY_TIMEOUT = 30.0


def _same_subscription(a: Subscription, b: Subscription) -> bool:
    return (
        a.provider_node == b.provider_node
        and a.provider_dsn == b.provider_dsn
        and sorted(a.replication_sets) == sorted(b.replication_sets)
        and a.forward_origins == b.forward_origins
        and a.enabled == b.enabled
    )


def create_subscription(
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
    if not action.copy_data:
        _wait_for_provider_copies(provider_conn, wanted.provider_node)
    run(conn, statements(action), transaction=True)
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


def _wait_for_provider_copies(provider_conn: ProviderConn | None, provider: str) -> None:
    """Wait (bounded) until the provider's own subscriptions finished their initial copies.

    A subscription made without a copy (a replace, or a subscriber that
    already holds rows) starts at its new slot. Rows the provider's copies
    write after that slot exists arrive here as inserts of rows this node
    may hold already (pglogical resolves them by rewriting the row: a flood
    of updates); rows they write before it never arrive, and the closing
    verify --repair finds them only if the provider holds them when it reads.
    A region rebuilt from an empty server copies its districts' rows while
    the nation's subscription to it is replaced in the same apply: the
    replace waits for those copies, then the repair brings exactly the rows
    the nation lacks. Past PROVIDER_COPY_TIMEOUT nothing was changed here.
    """
    pconn = provider_conn(provider) if provider_conn is not None else None
    if pconn is None:
        return  # _check_provider_sets already refused an unreachable provider when it is asked
    deadline = time.monotonic() + PROVIDER_COPY_TIMEOUT
    while running := live.copies_running(pconn):
        if time.monotonic() > deadline:
            raise ApplyError(
                f"provider {provider} is still copying the initial data of subscription(s)"
                f" {', '.join(running)} after {PROVIDER_COPY_TIMEOUT:g} s; nothing was changed for this"
                " subscription (made now, it would receive those copies as rows it may already hold):"
                " run apply again once they replicate"
            )
        time.sleep(0.2)


def alter_subscription(conn: Conn, action: AlterSubscription, provider_conn: ProviderConn | None) -> Outcome:
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
    run(conn, statements(action), transaction=True)
    return DONE


def replace_subscription(
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
    _wait_for_provider_copies(provider_conn, action.after.provider_node)
    dropped = {name: live.subscription(conn, name) for name in {action.before.name, action.after.name}}
    dropping = sum(
        1 for d in dropped.values() if d is not None and d.provider_node == action.after.provider_node
    )
    note = _check_stale_provider_record(conn, action.after, dropping)
    stop, *replace = statements(action)
    _stop_workers(conn, stop, sorted(dropped))
    # One transaction: if the create fails (or the process dies), the drop of
    # the local subscription rolls back too, and the stop is undone (enabled
    # again; if even that fails, the next plan shows the replace again); only
    # the provider's slot may be gone, which the next plan sees and replaces
    # again, never with a COPY.
    try:
        with _slot_warnings(conn) as warnings, conn.transaction():
            run(conn, replace)
    except psycopg.Error:
        _enable_again(conn, [sub for sub in dropped.values() if sub is not None and sub.enabled])
        raise
    notes = [
        "done" + _left_slot(sub, provider_conn)
        for _, sub in sorted(dropped.items())
        if sub is not None and _slot_left(warnings)
    ]
    notes.append("rows changed meanwhile need `reconcile verify --repair`")
    return Outcome(Result.DONE, note + "".join(f"; {n}" for n in notes))


def _stop_workers(conn: Conn, stop: sql.Composed, names: list[str]) -> None:
    """Disable the subscriptions and wait until their apply workers have exited (stop_subscriptions_sql).

    Bounded: a worker still running after WORKER_STOP_TIMEOUT is an error,
    and nothing is dropped (the subscription stays, disabled).
    """
    run(conn, [stop])
    deadline = time.monotonic() + WORKER_STOP_TIMEOUT
    while running := live.running_apply_workers(conn, names):
        if time.monotonic() > deadline:
            raise ApplyError(
                f"the apply worker of subscription(s) {', '.join(running)} did not stop within"
                f" {WORKER_STOP_TIMEOUT:g} s; nothing was dropped (the subscription is disabled)"
            )
        time.sleep(0.1)


def _enable_again(conn: Conn, subscriptions: list[live.LiveSubscription]) -> None:
    """After a replace that failed (rolled back), start the old subscriptions the stop disabled.

    Best effort: when the session itself is gone the old subscription stays
    disabled, and the next plan shows the replace again.
    """
    for sub in subscriptions:
        try:
            run(conn, [enable_subscription_sql(sub.name)])
        except psycopg.Error:
            return


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


def drop_subscription(conn: Conn, action: DropSubscription, provider_conn: ProviderConn | None) -> Outcome:
    """Drop it. pglogical drops the provider's slot over the subscription's DSN; a slot it could not drop is
    dropped over the reconciler's own connection to the provider, else reported."""
    current = live.subscription(conn, action.name)
    if current is None:
        return ALREADY
    stop, *drop = statements(action)
    _stop_workers(conn, stop, [action.name])
    with _slot_warnings(conn) as warnings:
        run(conn, drop)
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
            run(conn, statements(action))
            return DONE
        except pgerrors.UndefinedObject:
            return DONE  # gone meanwhile
        except pgerrors.ObjectInUse:
            # The terminated walsender has not exited yet, or the subscriber
            # reconnected at once: try again until the deadline.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
