"""Both engines: create the tool's heartbeat table on a node (monitoring: heartbeat)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from reconciler.actions import CreateHeartbeat
from reconciler.engines import ALREADY, DONE, Outcome, run
from reconciler.heartbeat import create_statements


def statements(action: CreateHeartbeat) -> list[sql.Composed]:
    """The schema and the table, each IF NOT EXISTS (a half-done earlier run is finished, not failed)."""
    return create_statements()


def execute(conn: psycopg.Connection[Any], action: CreateHeartbeat) -> Outcome:
    """Create the table unless the node has it; the columns are the tool's, never altered here."""
    # A plain text read (not composed): the engine's catalog reads are not its writes.
    row = conn.execute("SELECT to_regclass('reconcile.heartbeat') IS NOT NULL").fetchone()
    if row is not None and row[0]:
        return ALREADY
    run(conn, statements(action), transaction=True)
    return DONE
