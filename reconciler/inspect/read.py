"""One node, one connection, one round trip: the pipelined, rolled-back batch that reads everything."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import psycopg
from psycopg import sql

from reconciler.errors import ConnectError, InspectError
from reconciler.inspect.facts import InspectStats
from reconciler.inspect.normalise import RawAnswer
from reconciler.inspect.request import Request, statement
from reconciler.secrets import scrub

MAX_REASON = 300


def short_reason(message: str, dsn: str) -> str:
    """libpq's message on one line, without any password, at most MAX_REASON characters."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = "; ".join(lines).removeprefix("connection failed: ")
    text = scrub(text, dsn)
    if len(text) > MAX_REASON:
        text = text[: MAX_REASON - 3] + "..."
    return text


def _connect(dsn: str, timeout: float) -> psycopg.Connection[Any]:
    # libpq takes whole seconds and treats 1 as 2; round up so a short
    # timeout is never shorter than asked.
    seconds = max(1, math.ceil(timeout))
    return psycopg.connect(
        dsn,
        autocommit=True,
        connect_timeout=seconds,
        fallback_application_name="reconcile",
    )


def _batch(request: Request, timeout: float) -> list[tuple[sql.SQL | sql.Composed, dict[str, Any] | None]]:
    """The statements of the batch, in order; probe_results must stay after probe."""
    millis = max(1, int(timeout * 1000))
    return [
        # READ WRITE only because the probe creates temporary tables (refused
        # in a read-only transaction); the batch always ends in ROLLBACK.
        (sql.SQL("BEGIN ISOLATION LEVEL REPEATABLE READ"), None),
        (sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(millis)), None),
        # The probe's CREATE TABLE ... LIKE takes ACCESS SHARE on the real
        # table; never queue behind someone's ACCESS EXCLUSIVE for long.
        (sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(millis)), None),
        (statement("input"), {"input": json.dumps(request.input, sort_keys=True)}),
        (statement("probe"), None),
        (statement("server"), None),
        (statement("tables"), None),
        (statement("probe_results"), None),
        (sql.SQL("ROLLBACK"), None),
    ]


def read_node(
    dsn: str, request: Request, timeout: float, trace_fd: int | None = None
) -> tuple[RawAnswer, InspectStats]:
    """Connect once and send the whole batch with a single Sync.

    Raises ConnectError when the node does not answer, InspectError when it
    answers but the batch fails; both carry a short reason without secrets.
    `trace_fd` (tests) receives libpq's protocol trace, to count the Syncs.
    """
    started = time.monotonic()
    try:
        conn = _connect(dsn, timeout)
    except psycopg.OperationalError as exc:
        raise ConnectError(short_reason(str(exc), dsn)) from None
    round_trips = 0
    with conn:
        if trace_fd is not None:
            conn.pgconn.trace(trace_fd)
        batch = _batch(request, timeout)
        cursors = [conn.cursor() for _ in batch]
        try:
            # Statements are queued without waiting; leaving the block sends
            # the only Sync and collects every result. Fetching inside the
            # block would force an extra Sync (an extra round trip).
            with conn.pipeline():
                for cursor, (query, params) in zip(cursors, batch, strict=True):
                    cursor.execute(query, params)
            round_trips += 1
            server = cursors[5].fetchone()
            tables = cursors[6].fetchone()
            results = cursors[7].fetchone()
        except psycopg.DatabaseError as exc:
            raise InspectError(short_reason(_database_error(exc), dsn)) from None
        finally:
            if trace_fd is not None:
                conn.pgconn.untrace()
    if server is None or tables is None or results is None:
        raise InspectError("inspection returned no rows")
    raw = RawAnswer(
        server=server[0],
        tables=tables[0],
        filters=json.loads(results[0]),
        pglogical=json.loads(results[1]),
        native=json.loads(results[2]),
    )
    stats = InspectStats(connections=1, round_trips=round_trips, seconds=round(time.monotonic() - started, 6))
    return raw, stats


def _database_error(exc: psycopg.DatabaseError) -> str:
    diag = exc.diag
    primary = diag.message_primary or str(exc)
    return f"inspection failed: {diag.sqlstate or ''} {primary}".replace("  ", " ")
