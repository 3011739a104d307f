"""Read every node's replication health at once: versions, last apply, subscriptions, slots, lag."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.rows import dict_row

from reconciler import db
from reconciler.apply import log as apply_log
from reconciler.db import short_reason
from reconciler.errors import ConnectError
from reconciler.health.readings import ApplySummary, NodeReading, PendingRows, SlotReading, WorkerReading
from reconciler.inspect import server_log
from reconciler.inspect.read import quote_table
from reconciler.inspect.request import expected_slots
from reconciler.inspect.slots import is_native_table_sync, serves, slot_name_params
from reconciler.model import DesiredState, Engine
from reconciler.topology import edges

# What can go wrong while measuring one slot's lag in seconds, without the
# rest of the node being unreadable: the slot vanished or was invalidated
# meanwhile, no free slot for the copy (max_replication_slots), test_decoding
# not installed or not allowed, no privilege, the statement timeout.
_PROBE_ERRORS = (
    errors.UndefinedObject,
    errors.DuplicateObject,
    errors.ObjectNotInPrerequisiteState,
    errors.ConfigurationLimitExceeded,
    errors.UndefinedFile,
    errors.InsufficientPrivilege,
    errors.QueryCanceled,
    errors.FeatureNotSupported,
    errors.InvalidParameterValue,
)


def statement(name: str) -> sql.SQL:
    """One of this package's .sql files (reconciler/health/<name>.sql)."""
    return db.sql_file("reconciler.health", name)


Conn = psycopg.Connection[tuple[Any, ...]]


def rows(conn: Conn, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run one of this package's .sql files; rows as dicts (apply_log wants tuples elsewhere)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(statement(name), params)
        return cur.fetchall()


def _connect(dsn: str, timeout: float) -> Conn:
    return db.connect(
        dsn, timeout=timeout, fallback_application_name="reconcile status", statement_timeout=timeout
    )


def lag_seconds(conn: Conn, slot: str, probe: str) -> tuple[float, Any]:
    """Age of the oldest unconfirmed transaction, from a temporary test_decoding copy of `slot`.

    Truthful while the subscriber is away: the pending commit's time stays put
    and its age grows with the clock, where walsender-based figures
    (pg_stat_replication) vanish with the connection. Costs decoding the
    first pending transaction (milliseconds for usual ones; about 1 s for a
    200,000-row one, measured).
    """
    rows(conn, "lag_copy", {"slot": slot, "probe": probe})
    try:
        peeked = rows(conn, "lag_peek", {"probe": probe})
    finally:
        # The temporary copy may already be gone; it dies with the session anyway.
        with contextlib.suppress(errors.UndefinedObject):
            rows(conn, "lag_drop", {"probe": probe})
    if not peeked:
        return 0.0, None
    return float(peeked[0]["lag_seconds"]), peeked[0]["committed_at"]


def read_slots(conn: Conn, state: DesiredState, node: str, pglogical: bool) -> tuple[SlotReading, ...]:
    expected: dict[str, str] = {}  # an edge's slot name -> its subscription
    plugins = ["pglogical_output"]
    if pglogical:
        with conn.cursor() as cur:
            query = db.sql_file("reconciler.inspect", "pglogical/slot_names")
            cur.execute(query, slot_name_params(expected_slots(state, node)))
            expected = {str(slot): str(subscription) for subscription, slot in cur.fetchall()}
    if state.engine is Engine.NATIVE:
        # A native subscription's slot has the subscription's name. pglogical
        # slots stay listed: until the switch they still serve their edge.
        plugins.append("pgoutput")
        expected.update({e.subscription: e.subscription for e in edges(state) if e.provider == node})
    found = [
        row
        for row in rows(conn, "slots", {"plugins": plugins})
        # A native table sync's slot lives only while one table is copied.
        if not is_native_table_sync(row["slot"])
    ]
    backend = conn.info.backend_pid
    result: list[SlotReading] = []
    for number, row in enumerate(found):
        seconds: float | None = 0.0
        committed: Any = None
        problem: str | None = None
        lag = row["lag_bytes"]
        if row["wal_status"] == "lost" or row["retained_bytes"] is None:
            # An invalidated slot cannot be copied or decoded any more.
            seconds = None
        elif lag:
            try:
                seconds, committed = lag_seconds(conn, row["slot"], f"reconcile_lag_{backend}_{number}")
            except _PROBE_ERRORS as exc:
                seconds = None
                problem = (exc.diag.message_primary or type(exc).__name__).strip()
        result.append(
            SlotReading(
                slot=row["slot"],
                subscription=serves(row["slot"], expected),
                active=bool(row["active"]),
                wal_status=row["wal_status"],
                safe_wal_size=row["safe_wal_size"],
                retained_bytes=row["retained_bytes"],
                lag_bytes=lag,
                lag_seconds=seconds,
                oldest_pending_commit=committed,
                lag_seconds_error=problem,
            )
        )
    return tuple(result)


def read_workers(conn: Conn, pglogical: bool, native: bool) -> list[dict[str, Any]]:
    """Every subscription's worker, tables not ready and error counts (rows of the .sql files)."""
    found: list[dict[str, Any]] = []
    if pglogical:
        found += [{**r, "engine": "pglogical"} for r in rows(conn, "pglogical_workers")]
    if native:
        found += [{**r, "engine": "native"} for r in rows(conn, "native_workers")]
    return found


def read_log(
    conn: Conn, found: list[dict[str, Any]]
) -> tuple[dict[str, server_log.WorkerLog], str | None, Any]:
    """What the server log's tail says of each subscription; why it could not be read; the server's clock."""
    access = rows(conn, "server_log_access")[0]
    if not access["allowed"]:
        return (
            {},
            (
                f"cannot read the server log: role {conn.info.user} may not call pg_current_logfile,"
                " pg_stat_file and pg_read_binary_file (superuser, or GRANT EXECUTE on them)"
            ),
            access["read_at"],
        )
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(db.sql_file("reconciler.inspect", "server_log_tail"), {"tail": server_log.LOG_TAIL_BYTES})
        answer = cur.fetchall()[0]
    if answer["logfile"] is None:
        return (
            {},
            (
                f"cannot read the server log: no current log file (logging_collector is"
                f" {answer['logging_collector']})"
            ),
            answer["read_at"],
        )
    if answer["tail"] is None:
        return (
            {},
            "cannot read the server log: the log file rotated away while it was read",
            answer["read_at"],
        )
    lines = server_log.tail_lines(answer["tail"], answer["log_timezone"])
    logs: dict[str, server_log.WorkerLog] = {}
    for row in found:
        if row["engine"] == "pglogical":
            log = server_log.pglogical_worker(
                lines, row["database_oid"], row["subscription_id"], row["subscription"]
            )
        else:
            log = server_log.native_worker(lines, row["subscription_id"], row["subscription"])
        if log is not None:
            logs[row["subscription"]] = log
    return logs, None, answer["read_at"]


def read_columns(conn: Conn, state: DesiredState) -> dict[str, dict[str, str]]:
    """Columns (name -> type) of every declared table this node has."""
    names = sorted({t for s in state.replication_sets.values() for t in s.tables})
    columns: dict[str, dict[str, str]] = {}
    for row in rows(conn, "table_columns", {"quoted": [quote_table(t) for t in names]}):
        columns.setdefault(row["table_name"], {})[row["column_name"]] = row["column_type"]
    return columns


def schema_migration(conn: Conn) -> int:
    """The newest migration this node recorded (0: none, or no record table yet)."""
    exists = conn.execute("SELECT to_regclass('reconcile.schema_migrations') IS NOT NULL").fetchone()
    if exists is None or not exists[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(id), 0) FROM reconcile.schema_migrations").fetchone()
    return int(row[0]) if row is not None else 0


def pending(conn: Conn, state: DesiredState) -> tuple[PendingRows, ...]:
    """The declared tables this node still owes rows of, with the progress of their repair (none:
    no table, or a role that may not read it). Anyone who may write the table may write anything
    there: names are matched against the declared tables, times read only when finite, counts
    clamped, at most 200 rows."""
    readable = conn.execute(
        "SELECT coalesce(has_table_privilege(to_regclass('reconcile.pending_rows'), 'SELECT'), false)"
    ).fetchone()
    if readable is None or not readable[0]:
        return ()
    declared = sorted({t for s in state.replication_sets.values() for t in s.tables})
    found = conn.execute(
        "SELECT table_name,"
        " CASE WHEN isfinite(since) THEN since END,"
        " least(greatest(rows_to_copy, 0), 1000000000000000),"
        " least(greatest(rows_copied, 0), 1000000000000000),"
        " least(greatest(bytes_copied, 0), 1000000000000000),"
        " CASE WHEN isfinite(copy_started) THEN copy_started END,"
        " CASE WHEN isfinite(updated_at) THEN updated_at END"
        " FROM reconcile.pending_rows WHERE table_name = ANY(%s) ORDER BY table_name LIMIT 200",
        (declared,),
    ).fetchall()
    return tuple(
        PendingRows(
            table=r[0],
            since=r[1],
            rows_to_copy=r[2],
            rows_copied=r[3] or 0,
            bytes_copied=r[4] or 0,
            copy_started=r[5],
            updated_at=r[6],
        )
        for r in found
    )


def _workers(found: list[dict[str, Any]], logs: dict[str, server_log.WorkerLog]) -> dict[str, WorkerReading]:
    return {
        r["subscription"]: WorkerReading(
            subscription=r["subscription"],
            enabled=bool(r["enabled"]),
            worker_running=bool(r["worker_running"]),
            tables_not_ready=tuple(r["tables_not_ready"] or ()),
            apply_errors=r.get("apply_errors"),
            sync_errors=r.get("sync_errors"),
            log=logs.get(r["subscription"]),
        )
        for r in sorted(found, key=lambda r: (r["subscription"], r["engine"] == "native"))
    }


def _last_apply(conn: Conn) -> ApplySummary | None:
    record = apply_log.last(conn)
    if record is None:
        return None
    return ApplySummary(
        applied_at=record.applied_at,
        os_user=record.os_user,
        desired_commit=record.desired_commit,
        result=record.result,
        actions=len(record.actions),
    )


def read_node(state: DesiredState, node: str, timeout: float) -> NodeReading:
    """One node, one connection; never raises for a node that is down or unreadable."""
    started = time.monotonic()
    dsn = state.nodes[node].connect_dsn
    try:
        conn = _connect(dsn, timeout)
    except ConnectError as exc:
        # Already one line without secrets (db.short_reason).
        return NodeReading(node=node, reachable=False, reason=str(exc), seconds=_since(started))
    try:
        with conn:
            server = rows(conn, "server")[0]
            pglogical = server["pglogical_version"] is not None
            subscriptions: dict[str, str] = {}
            if pglogical and rows(conn, "local_node")[0]["has_node"]:
                subscriptions = {r["subscription"]: r["status"] for r in rows(conn, "subscriptions")}
            if state.engine is Engine.NATIVE:
                # A pglogical subscription not yet switched still counts for its
                # edge unless the native one of the same name exists.
                subscriptions.update(
                    {r["subscription"]: r["status"] for r in rows(conn, "native_subscriptions")}
                )
            slots = read_slots(conn, state, node, pglogical)
            last = _last_apply(conn)
            found = read_workers(conn, pglogical, state.engine is Engine.NATIVE)
            logs: dict[str, server_log.WorkerLog] = {}
            log_problem: str | None = None
            read_at: Any = None
            # The log is read only when it has something to explain.
            if any(r["enabled"] and not r["worker_running"] for r in found):
                logs, log_problem, read_at = read_log(conn, found)
            columns = read_columns(conn, state)
            migration = schema_migration(conn)
            owed = pending(conn, state)
    except psycopg.DatabaseError as exc:
        reason = short_reason(f"{exc.diag.sqlstate or ''} {exc.diag.message_primary or exc}".strip(), dsn)
        return NodeReading(
            node=node, reachable=False, reason=f"unreadable: {reason}", seconds=_since(started)
        )
    return NodeReading(
        node=node,
        reachable=True,
        server_version=server["server_version"],
        pglogical_version=server["pglogical_version"],
        beats=beat_ages(state, server["heartbeats"]),
        last_apply=last,
        subscriptions=dict(sorted(subscriptions.items())),
        slots=slots,
        seconds=_since(started),
        workers=_workers(found, logs),
        columns=columns,
        log_problem=log_problem,
        read_at=read_at,
        schema_migration=migration,
        pending_rows=owed,
    )


def beat_ages(state: DesiredState, text: str | None) -> dict[str, float]:
    """Declared node -> age in seconds of its newest beat here, from server.sql's JSON (None: no table).

    The rows are data anyone with write access may have put there: only
    declared nodes' names and finite numbers are kept.
    """
    if text is None:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {
        str(node): round(float(age), 3)
        for node, age in sorted(found.items())
        if node in state.nodes and isinstance(age, int | float) and math.isfinite(age)
    }


def _since(started: float) -> float:
    return round(time.monotonic() - started, 6)


def read_network(
    state: DesiredState,
    nodes: Sequence[str] | None = None,
    parallelism: int = 32,
    timeout: float = 10.0,
) -> dict[str, NodeReading]:
    """Every node (or those named) read concurrently; a silent node costs one timeout, not the others'."""
    names = sorted(state.nodes) if nodes is None else sorted(set(nodes))
    if not names:
        return {}
    found = db.fan_out(names, lambda name: read_node(state, name, timeout), parallelism, name="health")
    return dict(zip(names, found, strict=True))
