"""Point reads of one pglogical node's catalogs, by name, that the engine makes before it acts.

One .sql file per read under inspect/pglogical/point/, read by inspect/point.py (db.sql_file);
small typed parsers here. The whole-node reads of a plan are inspect/read.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from reconciler.inspect import point
from reconciler.model import ReplicationSet, SetTable, Subscription

Conn = psycopg.Connection[Any]


def _rows(conn: Conn, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return point.rows(conn, f"pglogical/point/{name}", params)


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
    wal_status: str | None


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


def running_apply_workers(conn: Conn, names: list[str]) -> list[str]:
    """Which of the named subscriptions still have an apply worker running here."""
    return [r["sub_name"] for r in _rows(conn, "apply_workers", {"names": names})]


def copies_running(conn: Conn) -> list[str]:
    """This node's enabled subscriptions whose initial copy has not finished yet."""
    return [r["sub_name"] for r in _rows(conn, "copies_running")]


def provider_sets(conn: Conn, sets: tuple[str, ...]) -> list[str]:
    return [r["set_name"] for r in _rows(conn, "provider_sets", {"sets": list(sets)})]


def slot(conn: Conn, name: str) -> Slot | None:
    rows = _rows(conn, "slot", {"slot": name})
    if not rows:
        return None
    r = rows[0]
    return Slot(
        database=r["database"], here=bool(r["here"]), active_pid=r["active_pid"], wal_status=r["wal_status"]
    )
