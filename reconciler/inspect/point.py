"""One point read an engine makes before it acts: the rows of one .sql file under inspect/, as dicts."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from reconciler import db


def rows(
    conn: psycopg.Connection[Any], name: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """`name` below inspect/, e.g. "native/point/publication"; a cursor, so no statement is left open."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(db.sql_file("reconciler.inspect", name), params)
        return cur.fetchall()
