"""The heartbeat: a table the tool owns, its SQL, and `reconcile heartbeat` writing each leaf's beat.

Opt-in (`monitoring: heartbeat: true`). Every node holds
reconcile.heartbeat(node text primary key, beat_at timestamptz); the table is
in every replicated set with no filter, so a leaf's row travels up the tree
like any approved row. Only a leaf writes, and only its own row, so rows
never conflict on the way up. `status` reads at every tier above a leaf how
old that leaf's newest beat is there: end-to-end freshness. The age compares
the leaf's clock (beat_at = its now()) with the observer's: the servers'
clocks are assumed synchronised (NTP).

The key is text, not uuid: the table is the tool's, outside preflight's and
verify's reach (both read only the declared `replication_sets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from reconciler import db
from reconciler.errors import ConnectError
from reconciler.model import DesiredState

SCHEMA = "reconcile"
TABLE = "heartbeat"
HEARTBEAT_TABLE = f"{SCHEMA}.{TABLE}"  # as set tables are named in catalogs ("schema.table")

_QUALIFIED = sql.Identifier(SCHEMA, TABLE)


def create_statements() -> list[sql.Composed]:
    """What creates the table on a node (idempotent: apply may meet it half-created by hand)."""
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)),
        sql.SQL("CREATE TABLE IF NOT EXISTS {} (node text PRIMARY KEY, beat_at timestamptz NOT NULL)").format(
            _QUALIFIED
        ),
    ]


def beat_statement(node: str) -> sql.Composed:
    """The upsert a leaf runs: its own row, stamped with its own clock."""
    return sql.SQL(
        "INSERT INTO {table} (node, beat_at) VALUES ({node}, now())"
        " ON CONFLICT (node) DO UPDATE SET beat_at = excluded.beat_at"
    ).format(table=_QUALIFIED, node=sql.Literal(node))


def leaves(state: DesiredState) -> list[str]:
    """Nodes no other node subscribes to (no node names them upstream), sorted: they write beats."""
    parents = {d.upstream for d in state.nodes.values() if d.upstream is not None}
    return sorted(n for n in state.nodes if n not in parents)


def observers(state: DesiredState, leaf: str) -> list[str]:
    """The nodes above `leaf`, nearest first: where its beat is read (bounded: the loader refuses cycles)."""
    above: list[str] = []
    current = state.nodes[leaf].upstream
    while current is not None and current in state.nodes and current not in above:
        above.append(current)
        current = state.nodes[current].upstream
    return above


@dataclass(frozen=True)
class Beat:
    """One leaf's beat: written, or why not (one line, no secret)."""

    node: str
    error: str | None = None


def beat_node(state: DesiredState, node: str, timeout: float) -> Beat:
    """Upsert `node`'s row over its admin DSN; never raises for a node that is down or refuses."""
    dsn = state.nodes[node].connect_dsn
    try:
        with (
            db.connect(
                dsn,
                timeout=timeout,
                fallback_application_name="reconcile heartbeat",
                writes=True,
                statement_timeout=timeout,
                lock_timeout=timeout,
            ) as conn,
            # The server's timeouts do not end a call on a link that black-holes.
            db.deadline(timeout + 5.0, lambda: [conn]),
        ):
            conn.execute(beat_statement(node))
    except ConnectError as exc:
        return Beat(node=node, error=str(exc))
    except psycopg.Error as exc:
        message = exc.diag.message_primary or type(exc).__name__
        return Beat(node=node, error=db.short_reason(f"{exc.diag.sqlstate or ''} {message}".strip(), dsn))
    return Beat(node=node)


def beat(
    state: DesiredState, nodes: Sequence[str] | None = None, timeout: float = 10.0, parallelism: int = 32
) -> list[Beat]:
    """A beat at every leaf (or the leaves named), concurrently; one result per leaf, sorted."""
    names = leaves(state) if nodes is None else sorted(set(nodes))
    if not names:
        return []
    return db.fan_out(names, lambda n: beat_node(state, n, timeout), parallelism, name="heartbeat")
