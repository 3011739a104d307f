"""Talking to nodes: the one connect(), the package's .sql files, and the bounded fan-out over nodes.

Every production connection (inspect, apply, status and serve, verify and
repair, review sizes) goes through `connect`. Only the sandbox keeps its
own (sandbox_server.connect): it talks to nothing but the loopback servers
it started itself.
"""

from __future__ import annotations

import math
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from importlib.resources import files
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from reconciler import dsn as dsnlib
from reconciler.config import load_operator_config
from reconciler.errors import ConnectError
from reconciler.secrets import scrub

MAX_REASON = 300

Item = TypeVar("Item")
Result = TypeVar("Result")

# Session settings that change how the server reads the SQL the tool sends,
# or what that SQL means, pinned for every session. They travel in the
# startup packet's `options` (as `-c name=value`), which PostgreSQL applies
# with source "client": that wins over ALTER ROLE/ALTER DATABASE ... SET and
# postgresql.conf, and, being appended after the DSN's own options (an
# operator may allow those, see dsn.py), over those too (the last -c wins).
# All are settable by any role: a setting only a superuser may set would
# make the server refuse the connection of every other role.
# The advisory lock every reconcile apply takes on each node it changes
# (apply/locks.py): one bigint key, "reconcil" in ASCII. PostgreSQL shows a
# bigint advisory key in pg_locks as classid (high half) and objid (low
# half) with objsubid = 1. Here because inspection reads it too.
APPLY_LOCK_KEY = 0x7265636F6E63696C
APPLY_LOCK_CLASSID = APPLY_LOCK_KEY >> 32
APPLY_LOCK_OBJID = APPLY_LOCK_KEY & 0xFFFFFFFF

PINNED: tuple[tuple[str, str], ...] = (
    # off: a backslash in '...' starts an escape, so literals in the tool's
    # .sql files and in row filters would mean something else.
    ("standard_conforming_strings", "on"),
    # The default: refuse \' in a literal where a multibyte encoding could
    # hide a quote in it.
    ("backslash_quote", "safe_encoding"),
    # A role's search_path (`evil, pg_catalog, public`) could put its own
    # function or operator in front of a built-in one the tool calls
    # unqualified (set_config, pg_get_expr, =). The tool's own objects are
    # always schema-qualified (reconcile.apply_log, pglogical.*, declared
    # tables); temporary tables (the filter probes) are named pg_temp.x or
    # looked up last, after the catalogs, never in front of them.
    ("search_path", "pg_catalog,pg_temp"),
    # Dates and intervals as psycopg parses them and as every node prints
    # them: verify compares rows by their text, and psycopg reads intervals
    # only in the postgres style.
    ("DateStyle", "ISO,MDY"),
    ("IntervalStyle", "postgres"),
    # timestamptz prints in the session's zone: one zone for every node, so
    # equal instants print (and hash, in verify) the same.
    ("TimeZone", "UTC"),
    # Floats printed shortest-exact (the default since PostgreSQL 12): a
    # role with fewer digits would round values and hide differences.
    ("extra_float_digits", "1"),
    # bytea as \x hex, which psycopg and verify expect; `escape` prints the
    # same bytes differently.
    ("bytea_output", "hex"),
    # on: `x = NULL` becomes `x IS NULL`, another meaning of the same SQL.
    ("transform_null_equals", "off"),
    # on: pg_get_expr and friends quote every identifier, so row filters
    # normalised on this node would differ from the same filters elsewhere.
    ("quote_all_identifiers", "off"),
    # off: a query that a row-security policy would filter fails instead of
    # silently returning fewer rows. verify compares row contents between
    # nodes and --repair writes what is missing or deletes what is extra: a
    # role that sees only part of a table must stop the run, not drive it.
    # Superusers and BYPASSRLS roles are not affected.
    ("row_security", "off"),
)
# session_replication_role is not pinned here: it needs superuser, and a
# startup option a role may not set refuses the connection (measured:
# "permission denied to set parameter"), which would lock status, plan and
# verify out for a monitoring role. Sessions that write check it instead
# (`writes=True`, see _require_origin): with `replica`, apply and repair
# would skip the tables' triggers.
# client_encoding is not an option but a connection keyword of its own,
# which libpq sends after `options`: it is passed as a keyword, below.
CLIENT_ENCODING = "UTF8"
# libpq also sends PGDATESTYLE and PGTZ from the environment as settings of
# their own, after `options`, and the server applies those last (measured:
# PGTZ=Asia/Kathmandu beat -c TimeZone=UTC). When either is set, the pin is
# set again once connected (a statement only then: runs without them keep
# one round trip per inspection).
ENVIRONMENT_SETTINGS = (("PGDATESTYLE", "DateStyle"), ("PGTZ", "TimeZone"))


def short_reason(message: str, dsn: str) -> str:
    """libpq's message on one line, without any password, at most MAX_REASON characters."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = "; ".join(lines).removeprefix("connection failed: ")
    text = scrub(text, dsn)
    if len(text) > MAX_REASON:
        text = text[: MAX_REASON - 3] + "..."
    return text


def milliseconds(seconds: float) -> int:
    """A timeout in whole milliseconds, rounded up and at least 1 (0 would mean no limit)."""
    return max(1, math.ceil(seconds * 1000))


def pinned_options(existing: str | None, extra: tuple[tuple[str, str], ...] = ()) -> str:
    """The startup packet's options: what libpq would have sent (`existing`), then the pins, then `extra`."""
    pins = " ".join(f"-c {name}={value}" for name, value in PINNED + extra)
    return f"{existing.strip()} {pins}" if existing and existing.strip() else pins


def connect(
    dsn: str,
    *,
    timeout: float,
    fallback_application_name: str = "reconcile",
    application_name: str | None = None,
    autocommit: bool = True,
    writes: bool = False,
    statement_timeout: float | None = None,
    lock_timeout: float | None = None,
    read_only: bool = False,
    idle_in_transaction_timeout: float | None = None,
) -> psycopg.Connection[Any]:
    """Open a connection to a node; ConnectError (no secret in it) when it cannot be had.

    `timeout` bounds the connection attempt; `statement_timeout` (seconds,
    None: no limit) every statement of the session, `lock_timeout` every
    wait for a lock, `idle_in_transaction_timeout` a transaction the client
    left open; `read_only` makes the
    server refuse any write (default_transaction_read_only); `writes`
    (apply, repair) makes sure the session fires triggers
    (session_replication_role = origin).
    """
    try:
        params = dsnlib.parse(dsn)
    except dsnlib.DsnError:
        # libpq's message can quote a token of the value: never shown.
        raise ConnectError("not a valid connection string (libpq cannot parse it)") from None
    # The options libpq would use on its own: the DSN's, else PGOPTIONS.
    # (Options in a service file are replaced: a service is for where and
    # who, see dsn.py; session settings belong in the DSN or PGOPTIONS.)
    existing = params.get("options", os.environ.get("PGOPTIONS"))
    names: dict[str, Any] = {"fallback_application_name": fallback_application_name}
    # The operator may make every connection log in as one role (config.py
    # [connect] user): e.g. review in CI as the read-only role, whose
    # password is the only one that job holds. A keyword beats the DSN's.
    user = load_operator_config().connect_user
    if user is not None:
        names["user"] = user
    if application_name is not None:
        names["application_name"] = application_name
    # Set in the startup packet with the pins: no round trip of its own.
    session: list[tuple[str, str]] = []
    if statement_timeout is not None:
        session.append(("statement_timeout", str(milliseconds(statement_timeout))))
    if lock_timeout is not None:
        session.append(("lock_timeout", str(milliseconds(lock_timeout))))
    if read_only:
        session.append(("default_transaction_read_only", "on"))
    if idle_in_transaction_timeout is not None:
        # A client that vanished mid-transaction (its socket closed by a
        # deadline, the link black-holed) must not hold its locks for hours.
        session.append(
            ("idle_in_transaction_session_timeout", str(milliseconds(idle_in_transaction_timeout)))
        )
    try:
        conn = psycopg.connect(
            dsn,
            autocommit=autocommit,
            # libpq takes whole seconds and treats 1 as 2; round up so a short
            # timeout is never shorter than asked.
            connect_timeout=max(1, math.ceil(timeout)),
            # A link that dies must end the session, not hang it: keepalives
            # find a silent peer, tcp_user_timeout unacknowledged sends (about
            # 30 s either way). Statements may legitimately run longer (an
            # initial sync), so no statement timeout here.
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            tcp_user_timeout=30000,
            client_encoding=CLIENT_ENCODING,
            options=pinned_options(existing, tuple(session)),
            **names,
        )
    except psycopg.Error as exc:
        raise ConnectError(short_reason(str(exc), dsn)) from None
    try:
        _repin_environment_settings(conn, dsn)
        if writes:
            _require_origin(conn, dsn)
    except BaseException:
        conn.close()
        raise
    return conn


def _repin_environment_settings(conn: psycopg.Connection[Any], dsn: str) -> None:
    """Set the pins again that PGDATESTYLE or PGTZ (libpq sends them, see ENVIRONMENT_SETTINGS) replaced."""
    pins = dict(PINNED)
    # libpq sends the variable unless it is unset or "default".
    names = [
        name
        for variable, name in ENVIRONMENT_SETTINGS
        if os.environ.get(variable, "default").lower() != "default"
    ]
    if not names:
        return
    calls = sql.SQL(", ").join(
        sql.SQL("pg_catalog.set_config({}, {}, false)").format(sql.Literal(name), sql.Literal(pins[name]))
        for name in names
    )
    try:
        conn.execute(sql.SQL("SELECT {}").format(calls))
        if not conn.autocommit:
            conn.commit()  # a session setting made in a transaction rolled back would be undone
    except psycopg.Error as exc:
        raise ConnectError(short_reason(str(exc), dsn)) from None


def _require_origin(conn: psycopg.Connection[Any], dsn: str) -> None:
    """Triggers fire for what this session writes, or ConnectError.

    A role or database set to `session_replication_role = replica` (ALTER
    ROLE ... SET, by a superuser) would make the tool's writes skip every
    ordinary trigger. Only a superuser may change it back.
    """
    current = "unknown"
    try:
        row = conn.execute(sql.SQL("SHOW session_replication_role")).fetchone()
        current = str(row[0]) if row else "origin"
        if current != "origin":
            conn.execute(sql.SQL("SET session_replication_role = origin"))
        if not conn.autocommit:
            conn.commit()
    except psycopg.errors.InsufficientPrivilege:
        raise ConnectError(
            f"session_replication_role is {current!r} for this role or database and only a superuser "
            "may set it back to 'origin': writes would skip the tables' triggers"
        ) from None
    except psycopg.Error as exc:
        raise ConnectError(short_reason(str(exc), dsn)) from None


@cache
def sql_text(package: str, name: str) -> str:
    """The text of a .sql file shipped in `package`, e.g. ("reconciler.inspect", "pglogical/node").

    `name` is a path below the package without the .sql suffix; folders are
    separated by "/".
    """
    path = files(package)
    *folders, stem = name.split("/")
    for folder in folders:
        path = path / folder
    return (path / f"{stem}.sql").read_text(encoding="utf-8")


def sql_file(package: str, name: str) -> sql.SQL:
    """A .sql file of the package as a statement (see sql_text for the arguments)."""
    # File text shipped with the package: as trusted as a literal, never user input.
    return sql.SQL(sql_text(package, name))


def fan_out(
    items: Sequence[Item],
    fn: Callable[[Item], Result],
    parallelism: int = 32,
    *,
    name: str = "reconcile",
) -> list[Result]:
    """fn(item) for every item, at most `parallelism` at once; the results in the order of `items`.

    One thread per call in flight: the work is waiting on nodes, not
    computing. An exception from fn is raised here once every call has
    ended (the first in item order); a caller that wants a result per item
    even when some fail catches in fn and returns the failure as a value.
    """
    if not items:
        return []
    if len(items) == 1:
        # No thread for a single call: same result, a shorter traceback.
        return [fn(items[0])]
    workers = max(1, min(parallelism, len(items)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        futures = [pool.submit(fn, item) for item in items]
        return [future.result() for future in futures]


def kill_socket(conn: psycopg.Connection[Any]) -> None:
    """Shut a connection's socket from another thread: a call blocked on it fails at once."""
    try:
        fd = conn.fileno()
    except (psycopg.Error, ValueError):
        return
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed
    finally:
        sock.close()


@contextmanager
def deadline(
    seconds: float,
    conns: Callable[[], Iterable[psycopg.Connection[Any]]],
    then: float | None = None,
    last: Callable[[], Iterable[psycopg.Connection[Any]]] | None = None,
) -> Iterator[threading.Event]:
    """A client-side deadline for the block: past `seconds`, the sockets of `conns()` are shut.

    A link that black-holes (a middlebox keeps TCP up, nothing is forwarded)
    answers keepalives, so neither libpq nor the server's statement_timeout
    ever ends a call blocked on it; this does. `last()`, when given, is shut
    `then` seconds later still (e.g. a node's own session, after the
    provider connections it waited on). The event yielded is set once the
    deadline fired; a block that ended first is never touched.
    """
    fired = threading.Event()
    guard = threading.Lock()
    done = False

    def expire(targets: Callable[[], Iterable[psycopg.Connection[Any]]]) -> None:
        with guard:
            if done:
                return
            fired.set()
            for conn in list(targets()):
                kill_socket(conn)

    timers = [threading.Timer(seconds, expire, (conns,))]
    if last is not None:
        timers.append(threading.Timer(seconds + (then or 0.0), expire, (last,)))
    for timer in timers:
        timer.daemon = True
        timer.start()
    try:
        yield fired
    finally:
        with guard:
            done = True
        for timer in timers:
            timer.cancel()
