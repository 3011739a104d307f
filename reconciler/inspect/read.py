"""One node, one connection, one round trip: the pipelined batch that reads everything, rolled back.

The batch is plain statements sent with a single Sync, in three groups:

1. what any database answers: server facts, replication slots, the declared
   tables (kind, replica identity, columns, primary key; for a database
   without pglogical, whether they hold rows);
2. only when asked: the filter probe (a DO block, see probe.sql) and the
   native engine's catalogs;
3. pglogical's catalogs, last: in a database without the extension their
   first statement fails at parse time, and in a pipeline the server then
   skips everything up to the Sync. Everything before was already answered;
   the failure is the expected sign of a database without pglogical.

Each statement reads a catalog as it is (rows, no JSON building): on a new
backend every function, operator and type a query names is looked up in
the system catalogs first, and that, not the reading, is what costs. The
client joins the rows (normalise.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg

from reconciler import db
from reconciler.db import short_reason
from reconciler.errors import InspectError
from reconciler.inspect.request import NATIVE_QUERIES, FilterProbe, Request, probe_input, sql_text
from reconciler.inspect.server_log import LOG_TAIL_BYTES
from reconciler.inspect.slots import slot_name_params
from reconciler.model import Engine

# What PostgreSQL says when a statement names the absent pglogical schema.
ABSENT = {"3F000", "42P01", "42883"}  # invalid_schema_name, undefined_table, undefined_function


@dataclass
class RawAnswer:
    """What the node said: rows per statement, keyed by the statement's name."""

    rows: dict[str, list[tuple[Any, ...]]]
    columns: dict[str, list[str]]  # column names per statement
    pglogical: bool  # False: the extension is not installed (its statements were not answered)
    native: bool = True  # False: the server predates the native catalogs (PostgreSQL < 15)
    filters: dict[FilterProbe, dict[str, Any]] = field(default_factory=dict)  # probe -> {"expr"} or {"error"}

    def one(self, name: str) -> tuple[Any, ...]:
        rows = self.rows.get(name) or []
        if len(rows) != 1:
            raise InspectError(f"inspection: {name} returned {len(rows)} rows, expected 1")
        return rows[0]


Step = tuple[str, str, dict[str, Any] | None]  # name (the .sql file), SQL text, parameters


def _step(name: str, params: dict[str, Any] | None = None) -> Step:
    return (name, sql_text(name), params)


def _begin(read_write: bool) -> Step:
    # READ WRITE only when probing: the probe creates temporary tables
    # (refused in a read-only transaction). The batch always ends in ROLLBACK.
    # Statement and lock timeouts come with the connection (inspect_node).
    return ("begin", "BEGIN ISOLATION LEVEL REPEATABLE READ" + ("" if read_write else ", READ ONLY"), None)


ROLLBACK: Step = ("rollback", "ROLLBACK", None)


def _probe_steps(request: Request, probes: tuple[FilterProbe, ...]) -> list[Step]:
    payload = dict(request.input)
    payload["filters"] = [probe_input(p) for p in probes]
    return [
        _step("input", {"input": json.dumps(payload, sort_keys=True)}),
        _step("probe"),
        _step("probe_results"),
    ]


def batch(request: Request, probes: tuple[FilterProbe, ...]) -> list[Step]:
    """Every statement of the one round trip, in order (see the module's docstring)."""
    names = [t["name"] for t in request.input["tables"]]
    tables = {"names": names, "quoted": [quote_table(t) for t in names]}
    native = request.engine is Engine.NATIVE
    steps = [
        _begin(bool(probes)),
        _step("server", {"lock_classid": db.APPLY_LOCK_CLASSID, "lock_objid": db.APPLY_LOCK_OBJID}),
        _step("slots"),
        _step("relations", {**tables, "asked": native}),
        _step("columns", tables),
    ]
    if probes:
        steps += _probe_steps(request, probes)
    elif native:
        steps.append(_step("input", {"input": json.dumps(request.input, sort_keys=True)}))
    if native:
        steps += [_step(f"native/{kind}") for kind in NATIVE_QUERIES]
    steps += [
        _step("pglogical/node"),
        _step("pglogical/sets"),
        _step("pglogical/set_tables"),
        _step("pglogical/subscriptions"),
        _step("pglogical/slot_names", slot_name_params(request.input["expected_slots"])),
        _step("pglogical/workers"),
    ]
    if not native:
        steps.append(_step("pglogical/has_rows", {**tables, "subscriptions": list(request.subscriptions)}))
    return [*steps, ROLLBACK]


def quote_table(name: str) -> str:
    """ "schema.table" as quoted identifiers, for to_regclass (which never raises)."""
    schema, _, table = name.partition(".")
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, table))


def _run(
    conn: psycopg.Connection[Any], steps: list[Step], trace_fd: int | None
) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[str]], str | None, psycopg.DatabaseError | None]:
    """Send the steps with one Sync: rows and column names of every answered statement, the first
    step that was not answered and the error, if any."""
    cursors = [conn.cursor() for _ in steps]
    error: psycopg.DatabaseError | None = None
    if trace_fd is not None:
        conn.pgconn.trace(trace_fd)
    try:
        # Statements are queued without waiting; leaving the block sends the
        # only Sync and collects every result. Fetching inside the block
        # would force an extra Sync (an extra round trip).
        with conn.pipeline():
            for cursor, (_, query, params) in zip(cursors, steps, strict=True):
                cursor.execute(query, params)
    except psycopg.DatabaseError as exc:
        error = exc
    finally:
        if trace_fd is not None:
            conn.pgconn.untrace()
    rows: dict[str, list[tuple[Any, ...]]] = {}
    columns: dict[str, list[str]] = {}
    failed: str | None = None
    for cursor, (name, _, _) in zip(cursors, steps, strict=True):
        if cursor.pgresult is None:
            failed = failed or name
            continue
        description = cursor.description
        rows[name] = cursor.fetchall() if description is not None else []
        columns[name] = [d.name for d in description or []]
    return rows, columns, failed, error


def read_catalogs(
    conn: psycopg.Connection[Any],
    dsn: str,
    request: Request,
    probes: tuple[FilterProbe, ...],
    trace_fd: int | None = None,
) -> RawAnswer:
    """The one round trip. InspectError (no secret in it) when the node cannot be read.

    `trace_fd` (tests) receives libpq's protocol trace, to count the Syncs.
    """
    steps = batch(request, probes)
    rows, columns, failed, error = _run(conn, steps, trace_fd)
    answer = RawAnswer(rows=rows, columns=columns, pglogical=True)
    if error is not None:
        server = server_facts(answer) if "server" in rows else None
        missing = expected_failure(failed, error.sqlstate, server)
        if missing is None:
            raise InspectError(short_reason(_database_error(error), dsn)) from None
        # Everything after the failed statement went unanswered: pglogical's
        # catalogs are absent or unknown, and preflight blocks the node when
        # its engine needs what is missing.
        answer.pglogical = False
        answer.native = missing is not Engine.NATIVE
    if probes:
        answer.filters = _probe_answers(probes, rows["probe_results"])
    return answer


def expected_failure(
    failed: str | None, sqlstate: str | None, server: dict[str, Any] | None
) -> Engine | None:
    """Which engine's catalogs a failed statement says are missing, or None for a real error.

    - pglogical's first statement fails at parse time in a database without
      the extension (the server step said so);
    - the native engine's statements name catalogs of PostgreSQL 15
      (pg_publication_namespace, prqual, prattrs): an older server has none.
    """
    if server is None or failed is None:
        return None
    if failed == "pglogical/node" and not server["pglogical_version"] and sqlstate in ABSENT:
        return Engine.PGLOGICAL
    if failed.startswith("native/") and server["server_version_num"] < 150000:
        return Engine.NATIVE
    return None


def needs_worker_log(answer: RawAnswer) -> bool:
    """An enabled subscription without its apply worker, and a role that may read the log."""
    server = server_facts(answer)
    workers = answer.rows.get("pglogical/workers") or []
    return bool(server.get("log_readable")) and any(
        enabled and not running for *_, running, enabled in workers
    )


def read_worker_log(
    conn: psycopg.Connection[Any], dsn: str, trace_fd: int | None = None
) -> list[tuple[Any, ...]]:
    """A second round trip, only when needs_worker_log: the log's tail (server_log_tail.sql's row)."""
    rows, _, _, error = _run(conn, [_step("server_log_tail", {"tail": LOG_TAIL_BYTES})], trace_fd)
    if error is not None:
        raise InspectError(short_reason(_database_error(error), dsn)) from None
    return rows["server_log_tail"]


def read_probes(
    conn: psycopg.Connection[Any],
    dsn: str,
    request: Request,
    probes: tuple[FilterProbe, ...],
    trace_fd: int | None = None,
) -> dict[FilterProbe, dict[str, Any]]:
    """A second round trip that only normalises `probes` (their remembered answers went stale)."""
    steps = [_begin(True), *_probe_steps(request, probes), ROLLBACK]
    rows, _, _, error = _run(conn, steps, trace_fd)
    if error is not None:
        raise InspectError(short_reason(_database_error(error), dsn)) from None
    return _probe_answers(probes, rows["probe_results"])


def _probe_answers(
    probes: tuple[FilterProbe, ...], rows: list[tuple[Any, ...]]
) -> dict[FilterProbe, dict[str, Any]]:
    answers = json.loads(rows[0][0])
    return dict(zip(probes, answers, strict=True))


def server_facts(answer: RawAnswer) -> dict[str, Any]:
    """server.sql's one row by column name."""
    return dict(zip(answer.columns["server"], answer.one("server"), strict=True))


def _database_error(exc: psycopg.DatabaseError) -> str:
    diag = exc.diag
    primary = diag.message_primary or str(exc)
    return f"inspection failed: {diag.sqlstate or ''} {primary}".replace("  ", " ")
