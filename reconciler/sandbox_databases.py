"""The sandbox's databases: created with pglogical and a schema, dropped even while they replicate."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import psycopg
from psycopg import sql

from reconciler import db
from reconciler.errors import SandboxError
from reconciler.sandbox_server import connect

DROP_TIMEOUT = 30.0
# Teardown statements (dropping subscriptions) and the wait for apply workers to stop.
STATEMENT_TIMEOUT = 30.0
WORKER_STOP_TIMEOUT = 10.0


def _query(name: str) -> sql.SQL:
    """One of the sandbox's .sql files (reconciler/sandbox_sql/<name>.sql)."""
    return db.sql_file("reconciler", f"sandbox_sql/{name}")


def _count(conn: psycopg.Connection[tuple[object, ...]], name: str) -> int:
    row = conn.execute(_query(name)).fetchone()
    return int(str(row[0])) if row is not None else 0


def existing_databases(port: int, names: Iterable[str]) -> set[str]:
    with connect(port) as conn:
        rows = conn.execute(_query("existing_databases"), {"names": sorted(names)}).fetchall()
    return {str(row[0]) for row in rows}


def create_database(port: int, dbname: str, schema_sql: str | None = None) -> bool:
    """Create `dbname` if missing, install pglogical, run the schema; True if created."""
    with connect(port) as conn:
        exists = conn.execute(_query("existing_databases"), {"names": [dbname]}).fetchall()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            except psycopg.errors.DuplicateDatabase:
                exists = [(dbname,)]  # created concurrently: leave it
    with connect(port, dbname) as conn:
        conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS pglogical"))
        if schema_sql:
            try:
                # A user's script of several statements: sent as one simple query.
                conn.execute(schema_sql.encode())
            except psycopg.Error as exc:
                raise SandboxError(f"schema failed in database {dbname!r} on port {port}: {exc}") from exc
    return not exists


def _drop_subscriptions(port: int, dbname: str) -> None:
    """pglogical.drop_subscription for every subscription of the database.

    Done while the database still accepts connections so that pglogical stops
    the apply workers and drops the slots they hold on their providers.
    """
    try:
        conn = connect(port, dbname)
    except SandboxError:
        return  # already refusing connections (an earlier drop got half-way)
    with conn:
        # Native subscriptions: DROP DATABASE refuses while the database has
        # any. Detached from their slots (the provider may be gone already);
        # each provider database's own drop removes the slot.
        for (name,) in conn.execute(_query("native_subscriptions")).fetchall():
            ident = sql.Identifier(str(name))
            try:
                conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
                conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident))
                conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))
            except psycopg.DatabaseError:
                continue
        has = conn.execute(_query("has_pglogical")).fetchone()
        if not has or not has[0]:
            return
        # Bounded: a teardown that waits for ever would hang its caller (a
        # test session); DROP DATABASE ... WITH (FORCE) removes what is left.
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{int(STATEMENT_TIMEOUT)}s")))
        try:
            conn.execute(_query("stop_pglogical_subscriptions"))
            deadline = time.monotonic() + WORKER_STOP_TIMEOUT
            while time.monotonic() < deadline and _count(conn, "pglogical_apply_workers"):
                time.sleep(0.05)
        except psycopg.DatabaseError:
            pass  # best effort, as below
        for (name,) in conn.execute(_query("pglogical_subscriptions")).fetchall():
            try:
                conn.execute(
                    sql.SQL("SELECT pglogical.drop_subscription({}, ifexists := true)").format(
                        sql.Literal(name)
                    )
                )
            except psycopg.DatabaseError:
                # Best effort: DROP DATABASE ... WITH (FORCE) removes it anyway;
                # only its provider slot may stay, and that database's own drop
                # removes the slot.
                continue


def _drop_slots(conn: psycopg.Connection[tuple[object, ...]], dbname: str) -> int:
    """Drop the database's logical slots; returns how many are still there (active)."""
    left = 0
    for slot, active_pid in conn.execute(_query("database_slots"), {"dbname": dbname}).fetchall():
        if active_pid is not None:
            conn.execute(
                sql.SQL("SELECT pg_catalog.pg_terminate_backend({})").format(sql.Literal(active_pid))
            )
        try:
            conn.execute(sql.SQL("SELECT pg_catalog.pg_drop_replication_slot({})").format(sql.Literal(slot)))
        except psycopg.errors.ObjectInUse:
            left += 1  # its walsender has not exited yet
        except psycopg.errors.UndefinedObject:
            pass  # dropped meanwhile (pglogical's drop_subscription from a subscriber)
    return left


def _wake_supervisor(port: int) -> None:
    """Make pglogical's supervisor absorb a pending ProcSignalBarrier.

    PostgreSQL 15's DROP DATABASE waits until every process has absorbed a
    ProcSignalBarrier (smgr release). pglogical 2.4.2's supervisor sleeps in
    WaitLatch for up to 180 s and reaches CHECK_FOR_INTERRUPTS only after
    "subscriptions changed", so the drop hangs for minutes ("still waiting for
    backend with PID ... to accept ProcSignalBarrier"). Terminating the
    supervisor is no way out: it exits with code 0 and is never restarted.
    Creating and dropping a node in one committed transaction sets that flag
    and its latch (pglogical_subscription_changed at commit).
    """
    with connect(port) as conn:
        conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS pglogical"))
        node = f"reconcile_wake_{conn.info.backend_pid}"
        with conn.transaction():
            conn.execute(_query("wake_create_node"), {"node": node})
            conn.execute(_query("wake_drop_node"), {"node": node})


def _drop_waking_supervisor(conn: psycopg.Connection[tuple[object, ...]], dbname: str) -> None:
    """DROP DATABASE ... WITH (FORCE) on `conn`, waking the supervisor while it waits."""
    port = int(conn.info.port)
    pid = conn.info.backend_pid
    done = threading.Event()

    def watch() -> None:
        try:
            with connect(port) as monitor:
                while not done.wait(0.1):
                    row = monitor.execute(_query("wait_event"), {"pid": pid}).fetchone()
                    if row is not None and row[0] == "ProcSignalBarrier":
                        _wake_supervisor(port)
        except (SandboxError, psycopg.Error):
            return  # best effort: without it the drop only takes longer

    watcher = threading.Thread(target=watch, name=f"wake-supervisor-{port}", daemon=True)
    watcher.start()
    try:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
    finally:
        done.set()
        watcher.join()


def drop_database(port: int, dbname: str, timeout: float = DROP_TIMEOUT) -> None:
    """Drop a database even while it holds pglogical nodes, subscriptions and slots.

    Order matters: pglogical's supervisor relaunches a manager worker for every
    database that allows connections, and its apply workers and the
    subscribers' walsenders reconnect, so a plain terminate-then-drop races
    them. Turning ALLOW_CONNECTIONS off first stops every relaunch; then the
    sessions are ended, the slots dropped (DROP DATABASE refuses while the
    database has any logical slot) and the database dropped WITH (FORCE).
    """
    if not existing_databases(port, [dbname]):
        return
    _drop_subscriptions(port, dbname)
    ident = sql.Identifier(dbname)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    with connect(port) as conn:
        # No statement outlives the deadline (DROP DATABASE can wait on a
        # ProcSignalBarrier that nothing absorbs): an error, never a hang.
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{max(1, int(timeout))}s")))
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident))
        while time.monotonic() < deadline:
            conn.execute(_query("terminate_backends"), {"dbname": dbname})
            if _drop_slots(conn, dbname):
                time.sleep(0.05)
                continue
            try:
                _drop_waking_supervisor(conn, dbname)
                return
            except (psycopg.errors.ObjectInUse, psycopg.errors.QueryCanceled) as exc:
                last = exc
                time.sleep(0.05)
    raise SandboxError(f"could not drop database {dbname!r} on port {port} in {timeout}s: {last}")


def drop_databases(databases: Iterable[tuple[int, str]]) -> None:
    """Drop several databases: subscriptions everywhere first, then each database.

    Dropping every subscription before any provider disappears lets pglogical
    drop the provider slots itself instead of logging "could not drop slot".
    """
    todo = sorted(set(databases))
    for port, dbname in todo:
        if existing_databases(port, [dbname]):
            _drop_subscriptions(port, dbname)
    for port, dbname in todo:
        drop_database(port, dbname)
