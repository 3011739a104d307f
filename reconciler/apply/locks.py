"""Advisory locks: one apply at a time per node, and who holds the lock when another waits."""

from __future__ import annotations

import psycopg
from psycopg import sql

from reconciler import db
from reconciler.errors import ApplyError

# The key and how pg_locks shows it live in db.py (inspection reads them too).
APPLY_LOCK_KEY = db.APPLY_LOCK_KEY
_CLASSID = db.APPLY_LOCK_CLASSID
_OBJID = db.APPLY_LOCK_OBJID


def holder(conn: psycopg.Connection) -> str:
    """Who holds the apply lock on this node, as PostgreSQL sees the holding session."""
    row = conn.execute(
        sql.SQL(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),"
            " coalesce(host(a.client_addr), 'local'), a.backend_start"
            " FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.classid = {} AND l.objid = {} AND l.objsubid = 1 AND l.database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).format(sql.Literal(_CLASSID), sql.Literal(_OBJID))
    ).fetchone()
    if row is None:
        return "unknown holder (the lock was released meanwhile)"
    pid, app, user, client, started = row
    return f"'{app}' (backend pid {pid}, user {user}, from {client}, since {started:%Y-%m-%d %H:%M:%S})"


def acquire(conn: psycopg.Connection, node: str, timeout: float | None) -> None:
    """Take the node's apply lock for the life of `conn`; fail at once or after `timeout` s."""
    # lock_timeout = 0 means "wait forever" to PostgreSQL: 0 (or less than a
    # millisecond) is "do not wait" here.
    if timeout is None or timeout < 0.001:
        got = conn.execute(
            sql.SQL("SELECT pg_try_advisory_lock({})").format(sql.Literal(APPLY_LOCK_KEY))
        ).fetchone()
        if got is None or not got[0]:
            raise ApplyError(f"node {node}: another apply holds the lock: {holder(conn)}")
        return
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{int(timeout * 1000)}ms"))
            )
            conn.execute(sql.SQL("SELECT pg_advisory_lock({})").format(sql.Literal(APPLY_LOCK_KEY)))
    except psycopg.errors.LockNotAvailable as exc:
        raise ApplyError(
            f"node {node}: another apply still holds the lock after {timeout:g} s: {holder(conn)}"
        ) from exc
