"""Server settings the desired state manages, the same for every engine (ALTER SYSTEM + reload)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from reconciler.actions import SetWalKeepSize
from reconciler.engines import ALREADY, Outcome, Result
from reconciler.model import wal_keep_bytes


def wal_keep_size_sql(value: str) -> list[sql.Composed]:
    """max_slot_wal_keep_size is reloadable: no restart, existing slots are judged against it at once."""
    return [
        sql.SQL("ALTER SYSTEM SET max_slot_wal_keep_size = {}").format(sql.Literal(value)),
        sql.SQL("SELECT pg_reload_conf()").format(),
    ]


def set_wal_keep_size(conn: psycopg.Connection[Any], action: SetWalKeepSize) -> Outcome:
    """Idempotent: a second run finds the value in place. ALTER SYSTEM refuses a transaction block,
    so this runs on the autocommit connection as it is."""
    row = conn.execute("SELECT current_setting('max_slot_wal_keep_size')").fetchone()
    if row is not None and wal_keep_bytes(row[0]) == wal_keep_bytes(action.after):
        return ALREADY
    for statement in wal_keep_size_sql(action.after):
        conn.execute(statement)
    return Outcome(Result.DONE, " (whole server; reloaded)")
