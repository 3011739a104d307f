"""Skip one poisoned transaction of a subscription, under guard: find it, move past it, record it, repair.

A transaction the subscriber cannot apply (a constraint only the subscriber
has, a trigger that fails) stops the link for good: the worker retries the
same transaction forever. Skipping it throws the whole transaction away at
this subscriber, so its rows are missing or stale there until the repair
that follows copies the provider's current rows of every table the edge
carries (the log names only the change that failed; the transaction may
have touched any table of the edge's sets).

native: `ALTER SUBSCRIPTION ... SKIP (lsn = ...)` with the transaction's
finish LSN (the server log's "finished at"). pglogical has no SKIP: its
replication origin (named like the slot) is advanced past the commit while
the subscription is disabled, as PostgreSQL's documentation describes for
native subscriptions ("the next LSN of the finish LSN"), then enabled. A
transaction whose commit record starts before the origin's position is
not sent again (logical decoding skips commits before its start point).
"""

from __future__ import annotations

import getpass
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from reconciler import db
from reconciler.apply import locks
from reconciler.apply import log as apply_log
from reconciler.errors import ConnectError, ReconcileError
from reconciler.health.causes import Cause
from reconciler.health.judge import judge_edge
from reconciler.health.reader import read_network
from reconciler.model import DesiredState, Engine
from reconciler.names import did_you_mean
from reconciler.plan import tool_version
from reconciler.topology import Edge, edges
from reconciler.verify.run import Options as VerifyOptions
from reconciler.verify.run import VerifyReport, run_verify

# "0/19ACD28": two hexadecimal halves of at most 32 bits each.
_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")

# Causes a skip can cure: the worker fails on a change. Every other cause
# has a remedy of its own (status names it), and skipping would only lose
# data: a missing column is added, a lost slot is re-copied.
_SKIPPABLE = {Cause.CONFLICT, Cause.APPLY_ERROR, Cause.STUCK}
# Causes where the log could not say which transaction fails: only with --lsn.
_SKIPPABLE_WITH_LSN = {Cause.UNKNOWN, Cause.WORKER_NOT_RUNNING}

POLL_SECONDS = 0.2
_READINGS = 3  # readings of the edge before a cause that says nothing is believed


class SkipError(ReconcileError):
    """A skip refused or failed; the message says what is wrong and what state the link is in."""


@dataclass(frozen=True)
class SkipOptions:
    timeout: float = 10.0  # connect timeout per node, seconds
    statement_timeout: float = 30.0
    lock_timeout: float = 0.0  # wait this long for another apply's lock (0: fail at once)
    wait: float = 60.0  # for the worker to pass the skipped transaction and catch up


@dataclass(frozen=True)
class SkipTarget:
    """What `skip` would do, shown before it asks: the edge, the transaction and the tables repaired after."""

    edge: Edge
    engine: Engine
    lsn: str  # the failing transaction's finish LSN
    lsn_from: str  # "the server log" or "--lsn"
    cause: str | None
    last_error: str | None
    failed_transaction: str | None
    apply_errors: int | None
    tables: tuple[str, ...]
    slot: str  # the edge's slot on the provider: its confirmed position says the link caught up


@dataclass
class SkipResult:
    target: SkipTarget
    detail: str = ""  # how the skip was done
    caught_up: bool = False  # the subscriber confirmed the provider's position after the skip
    verify: VerifyReport | None = None  # None: not run (the link did not catch up)
    record: int | None = None  # id in the subscriber's reconcile.apply_log
    notes: list[str] | None = None


def lsn_value(text: str) -> int:
    """An LSN's position as one number (for comparison), or SkipError naming the value."""
    if not _LSN.match(text):
        raise SkipError(f"--lsn {text!r}: not an LSN (two hexadecimal numbers, e.g. 0/19ACD28)")
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def _edge(state: DesiredState, subscriber: str, provider: str) -> Edge:
    for name in (subscriber, provider):
        if name not in state.nodes:
            raise SkipError(f"{name}: not a declared node{did_you_mean(name, state.nodes)}")
    providers: list[str] = []
    for edge in edges(state):
        if edge.subscriber == subscriber and edge.provider == provider:
            return edge
        if edge.subscriber == subscriber:
            providers.append(edge.provider)
    known = ", ".join(sorted(providers)) or "no node"
    raise SkipError(
        f"{subscriber} does not subscribe to {provider} in the desired state"
        f"{did_you_mean(provider, providers)}; it subscribes to {known}"
    )


def edge_tables(state: DesiredState, edge: Edge) -> tuple[str, ...]:
    """Every declared table the edge carries: what the skipped transaction may have touched."""
    return tuple(
        sorted(
            {t for s in edge.sets if s in state.replication_sets for t in state.replication_sets[s].tables}
        )
    )


def find_target(
    state: DesiredState, subscriber: str, provider: str, lsn: str | None, timeout: float
) -> SkipTarget:
    """Read both ends (as status does) and decide what would be skipped; SkipError when nothing should."""
    edge = _edge(state, subscriber, provider)
    if lsn is not None:
        lsn_value(lsn)
    for attempt in range(_READINGS):
        readings = read_network(state, nodes=[subscriber, provider], timeout=timeout)
        for name in (subscriber, provider):
            if not readings[name].reachable:
                raise SkipError(f"{name} does not answer ({readings[name].reason}); nothing was done")
        health = judge_edge(edge, readings, state)
        # A native worker is started again every few seconds and runs a
        # moment before it fails again: a reading in that moment says
        # nothing, so read again (bounded) rather than refuse.
        if not (health.worker_running and health.cause == Cause.UNKNOWN) or attempt == _READINGS - 1:
            break
        time.sleep(1.0)
    cause = Cause(health.cause) if health.cause is not None else None
    if cause is None:
        raise SkipError(
            f"{subscriber} <- {provider}: subscription {edge.subscription} is {health.status}"
            " and its worker fails on nothing: there is no transaction to skip; nothing was done"
        )
    if cause not in _SKIPPABLE and not (cause in _SKIPPABLE_WITH_LSN and lsn is not None):
        hint = (
            " (pass --lsn with the failing transaction's finish LSN)" if cause in _SKIPPABLE_WITH_LSN else ""
        )
        raise SkipError(
            f"{subscriber} <- {provider}: the cause is {cause.value} ({health.reason}), which a skip"
            f" does not cure{hint}; remedy: {health.remedy}; nothing was done"
        )
    found = health.failed_lsn
    if lsn is not None and found is not None and lsn_value(lsn) != lsn_value(found):
        raise SkipError(
            f"--lsn {lsn} is not the failing transaction: the server log says it finishes at {found};"
            " nothing was done"
        )
    chosen = lsn if lsn is not None else found
    if chosen is None:
        raise SkipError(
            f"{subscriber} <- {provider}: the server log does not name the failing transaction's LSN"
            f" (last error: {health.last_error or 'none in the log tail'}); pass --lsn; nothing was done"
        )
    if health.slot is None:
        raise SkipError(f"{provider} holds no slot for this edge; nothing was done")
    return SkipTarget(
        edge=edge,
        engine=state.engine,
        lsn=chosen.upper(),
        lsn_from="--lsn" if lsn is not None else "the server log",
        cause=cause.value,
        last_error=health.last_error,
        failed_transaction=health.failed_transaction,
        apply_errors=health.apply_errors,
        tables=edge_tables(state, edge),
        slot=health.slot,
    )


def _one(conn: psycopg.Connection[Any], query: sql.SQL | sql.Composed) -> Any:
    row = conn.execute(query).fetchone()
    return row[0] if row is not None else None


def _poll(check: Callable[[], bool], seconds: float) -> bool:
    """check() until true, at most `seconds`: every wait here is bounded."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def _provider_position(conn: psycopg.Connection[Any]) -> int:
    return lsn_value(str(_one(conn, sql.SQL("SELECT pg_catalog.pg_current_wal_insert_lsn()::text"))))


def _skip_native(conn: psycopg.Connection[Any], target: SkipTarget, wait: float) -> str:
    name = target.edge.subscription
    conn.execute(
        sql.SQL("ALTER SUBSCRIPTION {} SKIP (lsn = {})").format(sql.Identifier(name), sql.Literal(target.lsn))
    )
    # The worker clears subskiplsn once it has thrown the transaction away
    # (it retries after wal_retrieve_retry_interval, 5 s by default).
    cleared = sql.SQL(
        "SELECT subskiplsn = '0/0'::pg_lsn FROM pg_catalog.pg_subscription WHERE subname = {}"
        " AND subdbid = (SELECT oid FROM pg_catalog.pg_database"
        " WHERE datname = pg_catalog.current_database())"
    ).format(sql.Literal(name))
    if _poll(lambda: bool(_one(conn, cleared)), wait):
        return f"ALTER SUBSCRIPTION {name} SKIP (lsn = {target.lsn}): the worker passed it"
    return (
        f"ALTER SUBSCRIPTION {name} SKIP (lsn = {target.lsn}): set, but the worker had not reached it"
        f" within {wait:g} s (it skips it when it does)"
    )


def _pglogical_call(function: str, name: str, immediate: bool) -> sql.Composed:
    return sql.SQL("SELECT pglogical.{}(subscription_name := {}, immediate := {})").format(
        sql.Identifier(function), sql.Literal(name), sql.Literal(immediate)
    )


def _skip_pglogical(conn: psycopg.Connection[Any], target: SkipTarget, wait: float) -> str:
    name = target.edge.subscription
    row = conn.execute(
        sql.SQL(
            "SELECT s.sub_id::bigint, s.sub_slot_name::text,"
            " (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())::bigint"
            " FROM pglogical.subscription s WHERE s.sub_name = {}"
        ).format(sql.Literal(name))
    ).fetchone()
    if row is None:
        raise SkipError(f"{target.edge.subscriber} has no subscription {name}; nothing was done")
    sub_id, origin, database = row
    if (
        _one(
            conn,
            sql.SQL("SELECT count(*) FROM pg_catalog.pg_replication_origin WHERE roname = {}").format(
                sql.Literal(origin)
            ),
        )
        != 1
    ):
        raise SkipError(f"subscription {name} has no replication origin {origin}; nothing was done")
    target_lsn = lsn_value(target.lsn) + 1  # past the commit record that starts at the LSN
    worker = sql.SQL("SELECT count(*) = 0 FROM pg_catalog.pg_stat_activity WHERE backend_type = {}").format(
        sql.Literal(f"pglogical apply {database}:{sub_id}")
    )
    conn.execute(_pglogical_call("alter_subscription_disable", name, True))
    try:
        # The origin can be moved only once the worker has let go of it.
        if not _poll(lambda: bool(_one(conn, worker)), wait):
            raise SkipError(f"the apply worker of {name} did not stop within {wait:g} s; nothing was skipped")
        at = _one(
            conn,
            sql.SQL("SELECT pg_catalog.pg_replication_origin_progress({}, true)::text").format(
                sql.Literal(origin)
            ),
        )
        if at is not None and lsn_value(str(at)) >= target_lsn:
            raise SkipError(
                f"subscription {name} has already applied past {target.lsn} (origin {origin} at {at});"
                " nothing was skipped"
            )
        # pg_replication_origin_advance would also move backwards: checked above.
        conn.execute(
            sql.SQL("SELECT pg_catalog.pg_replication_origin_advance({}, {}::pg_lsn + 1)").format(
                sql.Literal(origin), sql.Literal(target.lsn)
            )
        )
    finally:
        # Enabled again whatever happened: the link is never left disabled by a skip.
        conn.execute(_pglogical_call("alter_subscription_enable", name, True))
    return f"origin {origin} advanced from {at or 'its start'} past {target.lsn}; {name} enabled again"


def _record(target: SkipTarget, kind: str, status: str, description: str) -> dict[str, str]:
    return {"kind": kind, "subject": target.edge.subscription, "description": description, "status": status}


def _caught_up(provider: psycopg.Connection[Any], slot: str, position: int) -> Callable[[], bool]:
    query = sql.SQL(
        "SELECT confirmed_flush_lsn::text FROM pg_catalog.pg_replication_slots WHERE slot_name = {}"
    ).format(sql.Literal(slot))

    def check() -> bool:
        confirmed = _one(provider, query)
        return confirmed is not None and lsn_value(str(confirmed)) >= position

    return check


def run_skip(
    state: DesiredState,
    target: SkipTarget,
    options: SkipOptions,
    desired_commit: str | None,
    dirty: bool,
) -> SkipResult:
    """Skip the target's transaction, record it, wait for the link to catch up, then verify and repair.

    Holds the subscriber's apply lock throughout, so no apply runs meanwhile.
    """
    edge = target.edge
    result = SkipResult(target=target, notes=[])
    user, host = getpass.getuser(), socket.gethostname()
    skip_text = f"skip the transaction finishing at {target.lsn} from {edge.provider}"
    repair_text = f"verify --repair {', '.join(target.tables)} on {edge.subscriber}"
    try:
        conn = db.connect(
            state.nodes[edge.subscriber].connect_dsn,
            timeout=options.timeout,
            application_name=f"reconcile skip {user}@{host}"[:63],
            writes=True,
            statement_timeout=options.statement_timeout,
        )
        provider = db.connect(
            state.nodes[edge.provider].connect_dsn,
            timeout=options.timeout,
            statement_timeout=options.statement_timeout,
            read_only=True,
        )
    except ConnectError as exc:
        raise SkipError(f"cannot connect: {exc}; nothing was done") from exc
    try:
        if lsn_value(target.lsn) >= _provider_position(provider):
            raise SkipError(f"{target.lsn} lies beyond what {edge.provider} has written; nothing was done")
        try:
            locks.acquire(conn, edge.subscriber, options.lock_timeout)
        except psycopg.Error as exc:
            raise SkipError(
                f"{edge.subscriber}: cannot take the apply lock: {exc}; nothing was done"
            ) from exc
        record = apply_log.start(
            conn,
            os_user=user,
            client_host=host,
            tool_version=tool_version(),
            desired_commit=desired_commit,
            dirty=dirty,
            actions=[
                _record(target, "skip_transaction", "planned", skip_text),
                _record(target, "verify_repair", "planned", repair_text),
            ],
        )
        result.record = record
        try:
            if target.engine is Engine.NATIVE:
                result.detail = _skip_native(conn, target, options.wait)
            else:
                result.detail = _skip_pglogical(conn, target, options.wait)
        except (SkipError, psycopg.Error) as exc:
            error = str(exc).strip()
            apply_log.finish(
                conn,
                record,
                result=apply_log.Result.FAILED,
                actions=[
                    _record(target, "skip_transaction", "failed", skip_text),
                    _record(target, "verify_repair", "not_attempted", repair_text),
                ],
                message=f"{edge.subscriber}: {skip_text}: {error}",
            )
            if isinstance(exc, SkipError):
                raise
            raise SkipError(f"{edge.subscriber}: {skip_text}: {db.short_reason(error, '')}") from exc
        # Repair only once the subscriber holds everything the provider had
        # written: a row repaired while its own insert is still on the way
        # would make that insert fail (natively: a duplicate key, down again).
        result.caught_up = _poll(
            _caught_up(provider, target.slot, _provider_position(provider)), options.wait
        )
        repair_status = "not_attempted"
        message: str | None = None
        if result.caught_up:
            result.verify = run_verify(
                state,
                scope={edge.subscriber: target.tables},
                do_repair=True,
                options=VerifyOptions(timeout=options.timeout),
            )
            failed = [t for t in result.verify.tables if t.final is None or not t.final.consistent]
            repair_status = "failed" if failed or result.verify.unreachable else "done"
            if repair_status == "failed":
                message = f"{edge.subscriber}: {repair_text}: tables still differ or could not be compared"
        else:
            message = (
                f"{edge.subscriber} did not confirm {edge.provider}'s position within {options.wait:g} s"
                f" after the skip: not repaired; run `reconcile verify --repair --node {edge.subscriber}`"
                " once `reconcile status` shows the link replicating"
            )
            result.notes = [message]
        apply_log.finish(
            conn,
            record,
            result=apply_log.Result.OK if repair_status == "done" else apply_log.Result.FAILED,
            actions=[
                _record(target, "skip_transaction", "done", f"{skip_text}: {result.detail}"),
                _record(target, "verify_repair", repair_status, repair_text),
            ],
            message=message,
        )
    finally:
        conn.close()
        provider.close()
    return result
