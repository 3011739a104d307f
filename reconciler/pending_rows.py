"""Rows a subscriber still owes: the tables apply must verify and repair there, kept until it did.

An action that leaves a subscriber without rows it should hold (a
subscription made without a copy, sets added to one, a filter replaced:
apply/rows.py) is recorded in the subscriber's `reconcile.pending_rows`
before it runs. The record stays until a verify and repair of that table
there ends consistent, so an apply that fails, is interrupted or killed
half-way through a copy leaves it behind: the next `plan` shows it and the
next `apply` resumes the repair, even when the catalogs have converged.
The repair writes its progress into the record as it goes (rows to copy,
rows and bytes copied), which `status` shows while it runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

Conn = psycopg.Connection[Any]

# Serialises the creation of the table (an advisory lock of its own, apart from apply's).
DDL_LOCK_KEY = 0x7265636F6E70656E  # "reconpen": not the apply lock (db.APPLY_LOCK_KEY)

_DDL = [
    sql.SQL("CREATE SCHEMA IF NOT EXISTS reconcile"),
    sql.SQL(
        "CREATE TABLE IF NOT EXISTS reconcile.pending_rows ("
        " table_name text PRIMARY KEY,"
        " because text NOT NULL,"
        " since timestamptz NOT NULL DEFAULT now(),"
        " rows_to_copy bigint,"
        " rows_copied bigint NOT NULL DEFAULT 0,"
        " bytes_copied bigint NOT NULL DEFAULT 0,"
        " copy_started timestamptz,"
        " updated_at timestamptz)"
    ),
]


def record(conn: Conn, tables: Iterable[str], because: str) -> None:
    """Note on this subscriber that `tables` owe rows (an older record keeps its `since`)."""
    names = sorted(set(tables))
    if not names:
        return
    with conn.transaction():
        # Two applies' actions (or two of one apply, from two providers) may record
        # here at once: CREATE ... IF NOT EXISTS is not safe against itself.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK_KEY,))
        for statement in _DDL:
            conn.execute(statement)
        for name in names:
            conn.execute(
                "INSERT INTO reconcile.pending_rows (table_name, because) VALUES (%s, %s)"
                " ON CONFLICT (table_name) DO UPDATE SET because = EXCLUDED.because",
                (name, because[:500]),
            )


def exists(conn: Conn) -> bool:
    row = conn.execute("SELECT to_regclass('reconcile.pending_rows') IS NOT NULL").fetchone()
    return bool(row and row[0])


def copy_started(conn: Conn, table: str, rows_to_copy: int) -> None:
    """A repair of `table` begins: what it has to write (the counters start again from zero)."""
    conn.execute(
        "UPDATE reconcile.pending_rows SET rows_to_copy = %s, rows_copied = 0, bytes_copied = 0,"
        " copy_started = now(), updated_at = now() WHERE table_name = %s",
        (rows_to_copy, table),
    )


def copied(conn: Conn, table: str, rows: int, size: int) -> None:
    """One batch of `rows` rows (`size` bytes of row data) written to `table`."""
    conn.execute(
        "UPDATE reconcile.pending_rows SET rows_copied = rows_copied + %s, bytes_copied = bytes_copied + %s,"
        " updated_at = now() WHERE table_name = %s",
        (rows, size, table),
    )


def settled(conn: Conn, tables: Iterable[str]) -> None:
    """`tables` verified consistent here: their records go."""
    names = sorted(set(tables))
    if names and exists(conn):
        conn.execute("DELETE FROM reconcile.pending_rows WHERE table_name = ANY(%s)", (names,))
