"""Point reads the native engine makes before it acts: publications, subscriptions, identities, origins.

One .sql file per read under inspect/native/point/, read by inspect/point.py (db.sql_file);
small typed parsers here. The whole-node reads of a plan are inspect/read.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from reconciler.inspect import point
from reconciler.model import ReplicationSet, SetTable
from reconciler.replica_identity import IdentityKind, ReplicaIdentity

Conn = psycopg.Connection[Any]


def _rows(conn: Conn, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return point.rows(conn, f"native/point/{name}", params)


def _one(conn: Conn, name: str, params: dict[str, Any]) -> dict[str, Any] | None:
    found = _rows(conn, name, params)
    return found[0] if found else None


@dataclass(frozen=True)
class Publication:
    set: ReplicationSet  # flags only
    all_tables: bool


@dataclass(frozen=True)
class NativeSubscription:
    name: str
    conninfo: str
    enabled: bool
    slot_name: str | None
    publications: tuple[str, ...]
    origin: str


@dataclass(frozen=True)
class SlotPosition:
    active: bool
    confirmed_flush_lsn: str | None


def publication(conn: Conn, name: str) -> Publication | None:
    r = _one(conn, "publication", {"name": name})
    if r is None:
        return None
    flags = ReplicationSet(
        name=r["name"],
        replicate_insert=r["pubinsert"],
        replicate_update=r["pubupdate"],
        replicate_delete=r["pubdelete"],
        replicate_truncate=r["pubtruncate"],
    )
    return Publication(set=flags, all_tables=r["all_tables"])


def publication_table(conn: Conn, name: str, table: str) -> SetTable | None:
    r = _one(conn, "publication_table", {"name": name, "table": table})
    if r is None:
        return None
    columns = r["columns"]
    return SetTable(row_filter=r["row_filter"], columns=tuple(columns) if columns is not None else None)


def subscription(conn: Conn, name: str) -> NativeSubscription | None:
    r = _one(conn, "subscription", {"name": name})
    if r is None:
        return None
    return NativeSubscription(
        name=r["name"],
        conninfo=r["conninfo"],
        enabled=r["enabled"],
        slot_name=r["slot_name"],
        publications=tuple(sorted(r["publications"] or [])),
        origin=r["origin"],
    )


def apply_worker_running(conn: Conn, name: str) -> bool:
    """Whether the named subscription's apply worker runs now."""
    found = _one(conn, "apply_worker", {"name": name})
    return bool(found and found["running"])


def replica_identity(conn: Conn, table: str) -> ReplicaIdentity:
    r = _one(conn, "replica_identity", {"table": table})
    if r is None:
        return ReplicaIdentity(IdentityKind.MISSING)
    kind = IdentityKind(r["kind"])
    return ReplicaIdentity.index(r["columns"] or []) if kind is IdentityKind.INDEX else ReplicaIdentity(kind)


def origin_lsn(conn: Conn, origin: str) -> str | None:
    r = _one(conn, "origin_lsn", {"origin": origin})
    return None if r is None else r["remote_lsn"]


def origin_exists(conn: Conn, origin: str) -> bool:
    r = _one(conn, "origin_exists", {"origin": origin})
    return bool(r and r["present"])


def pglogical_subscriber_slots(conn: Conn) -> list[str]:
    return [r["slot_name"] for r in _rows(conn, "pglogical_subscribers")]


def slot_position(conn: Conn, slot: str) -> SlotPosition | None:
    r = _one(conn, "slot_position", {"slot": slot})
    return (
        None
        if r is None
        else SlotPosition(active=bool(r["active"]), confirmed_flush_lsn=r["confirmed_flush_lsn"])
    )


def has_pglogical(conn: Conn) -> bool:
    r = _one(conn, "has_pglogical", {})
    return bool(r and r["present"])


def lsn_reached(conn: Conn, a: str, b: str) -> bool:
    r = _one(conn, "lsn_reached", {"a": a, "b": b})
    return bool(r and r["reached"])
