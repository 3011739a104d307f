"""Point reads of one node's pglogical catalogs that the pglogical engine checks before it acts."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from reconciler.model import ReplicationSet, SetTable, Subscription
from reconciler.secrets import scrub

Conn = psycopg.Connection[Any]


def redact(text: str) -> str:
    """Passwords removed from DSNs that a PostgreSQL message may quote (one implementation: secrets.py)."""
    return scrub(text)


def pg_message(exc: psycopg.Error) -> str:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip()
    if diag.message_detail:
        message += f" ({diag.message_detail})"
    return redact(message)


@cache
def _query(name: str) -> bytes:
    # bytes: psycopg accepts them as a query without a LiteralString.
    return (files("reconciler.engines") / "pglogical_queries" / f"{name}.sql").read_bytes()


def _rows(conn: Conn, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_query(name), params)
        return cur.fetchall()


def run(conn: Conn, statements: list[sql.Composed]) -> None:
    for statement in statements:
        conn.execute(statement)


def scalar(conn: Conn, statement: sql.Composed) -> object:
    row = conn.execute(statement).fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True)
class LocalNode:
    name: str
    interface: str
    dsn: str


@dataclass(frozen=True)
class Interface:
    name: str
    dsn: str
    is_local: bool
    subscriptions: int


class LiveSubscription(Subscription):
    """A subscription as read back, with the provider slot pglogical named for it."""

    slot_name: str


@dataclass(frozen=True)
class Slot:
    database: str | None
    here: bool
    active_pid: int | None


def local_node(conn: Conn) -> LocalNode | None:
    rows = _rows(conn, "local_node")
    if not rows:
        return None
    r = rows[0]
    return LocalNode(name=r["node_name"], interface=r["if_name"], dsn=r["if_dsn"])


def node_interfaces(conn: Conn, node: str) -> list[Interface]:
    return [
        Interface(
            name=r["if_name"],
            dsn=r["if_dsn"],
            is_local=r["is_local"],
            subscriptions=int(r["subscriptions"]),
        )
        for r in _rows(conn, "node_interfaces", {"node": node})
    ]


def replication_set(conn: Conn, name: str) -> ReplicationSet | None:
    rows = _rows(conn, "replication_set", {"set_name": name})
    if not rows:
        return None
    r = rows[0]
    return ReplicationSet(
        name=r["set_name"],
        replicate_insert=r["replicate_insert"],
        replicate_update=r["replicate_update"],
        replicate_delete=r["replicate_delete"],
        replicate_truncate=r["replicate_truncate"],
    )


def set_table(conn: Conn, set_name: str, table: str) -> SetTable | None:
    """The table's membership in the set, None if absent; columns sorted, filter normalised."""
    rows = _rows(conn, "set_table", {"set_name": set_name, "table": table})
    if not rows:
        return None
    r = rows[0]
    columns = r["set_att_list"]
    return SetTable(
        row_filter=r["row_filter"],
        columns=tuple(sorted(columns)) if columns is not None else None,
    )


def subscription(conn: Conn, name: str) -> LiveSubscription | None:
    rows = _rows(conn, "subscription", {"name": name})
    if not rows:
        return None
    r = rows[0]
    return LiveSubscription(
        name=r["sub_name"],
        provider_node=r["provider_node"],
        provider_dsn=r["provider_dsn"],
        replication_sets=tuple(r["replication_sets"]),
        forward_origins=tuple(r["forward_origins"]),
        enabled=r["sub_enabled"],
        slot_name=r["sub_slot_name"],
    )


def provider_sets(conn: Conn, sets: tuple[str, ...]) -> list[str]:
    return [r["set_name"] for r in _rows(conn, "provider_sets", {"sets": list(sets)})]


def slot(conn: Conn, name: str) -> Slot | None:
    rows = _rows(conn, "slot", {"slot": name})
    if not rows:
        return None
    r = rows[0]
    return Slot(database=r["database"], here=bool(r["here"]), active_pid=r["active_pid"])
