"""Native engine: a node's answer about publications, subscriptions and slots -> the model (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.inspect import slots
from reconciler.inspect.facts import TableFacts
from reconciler.inspect.request import Request
from reconciler.live import SubscriptionFacts
from reconciler.model import NodeCatalog, ReplicationSet, SetTable, Subscription
from reconciler.secrets import redact
from reconciler.topology import FORWARD_ALL

# A publication FOR ALL TABLES or FOR TABLES IN SCHEMA publishes tables that
# pg_publication_rel does not list. They appear as these pseudo-table entries
# (no real table is named like this: declared tables are "schema.table"), so
# that the plan shows them as drift instead of treating the set as empty.
ALL_TABLES = "ALL TABLES"
SCHEMA_PREFIX = "TABLES IN SCHEMA "

# The provider of a subscription nobody declared and whose DSN matches no node.
UNKNOWN_PROVIDER = "unknown"


def publications(rows: list[dict[str, Any]]) -> dict[str, ReplicationSet]:
    """Publications as replication sets: the publication name is the set name."""
    sets: dict[str, ReplicationSet] = {}
    for row in sorted(rows, key=lambda r: str(r["name"])):
        tables = {
            t["table"]: SetTable(
                row_filter=t["row_filter"],
                columns=tuple(sorted(t["columns"])) if t["columns"] is not None else None,
            )
            for t in row["tables"]
        }
        if row["all_tables"]:
            tables[ALL_TABLES] = SetTable()
        for schema in row["schemas"]:
            tables[SCHEMA_PREFIX + schema] = SetTable()
        sets[row["name"]] = ReplicationSet(
            name=row["name"],
            replicate_insert=row["replicate_insert"],
            replicate_update=row["replicate_update"],
            replicate_delete=row["replicate_delete"],
            replicate_truncate=row["replicate_truncate"],
            tables=dict(sorted(tables.items())),
        )
    return sets


def subscriptions(rows: list[dict[str, Any]], request: Request) -> dict[str, Subscription]:
    """Native subscriptions; the provider node comes from the declared edge of that name.

    pg_subscription keeps no provider node, only the connection string: an
    undeclared subscription is named after the node whose declared DSN it
    uses, else "unknown". PostgreSQL 15 subscriptions forward every origin.
    """
    found: dict[str, Subscription] = {}
    for row in sorted(rows, key=lambda r: str(r["name"])):
        name, conninfo = row["name"], row["conninfo"]
        # Declared DSNs hold no password; one written into subconninfo by hand does not hide the node.
        provider = request.providers.get(name) or request.dsn_nodes.get(redact(conninfo)) or UNKNOWN_PROVIDER
        found[name] = Subscription(
            name=name,
            provider_node=provider,
            provider_dsn=conninfo,
            replication_sets=tuple(sorted(row["publications"] or [])),
            forward_origins=FORWARD_ALL,
            enabled=row["enabled"],
        )
    return found


def orphan_slots(rows: list[dict[str, Any]], request: Request) -> list[str]:
    """pgoutput slots of this database that no declared edge from this node uses.

    A native subscription's slot is named after the subscription (the rule
    itself, table syncs included, is slots.py's).
    """
    names = [str(e["subscription"]) for e in request.input.get("expected_slots", [])]
    expected = {name: name for name in names}
    return slots.orphans((str(r["slot"]) for r in rows), expected)


def live_catalog(
    native: Mapping[str, Any],
    request: Request,
    legacy: Mapping[str, Subscription],
    pglogical_orphans: tuple[str, ...],
) -> NodeCatalog:
    """The database's native objects, the pglogical subscriptions it still holds, and orphaned slots."""
    identities = native.get("identities") or {}
    return NodeCatalog(
        sets=publications(native.get("publications") or []),
        subscriptions=subscriptions(native.get("subscriptions") or [], request),
        orphan_slots=tuple(sorted({*orphan_slots(native.get("slots") or [], request), *pglogical_orphans})),
        replica_identities={
            table: identities.get(table, "missing") for table in sorted(request.identity_needs)
        },
        legacy_subscriptions=dict(sorted(legacy.items())),
    )


def desired_identities(request: Request, tables: Mapping[str, TableFacts]) -> dict[str, str]:
    """The replica identity each filtered table needs on this node: a unique index on key + filter columns.

    Not REPLICA IDENTITY FULL, although it also covers every filter (all measured):
    * with a column list PostgreSQL refuses UPDATE/DELETE unless the list
      covers the identity, and FULL is every column;
    * pglogical's apply worker fails on a subscriber table with FULL
      ("could not find REPLICA IDENTITY index"), which breaks the pglogical
      subscriptions still running during an engine switch.
    A filter reading only key columns needs nothing. A table that does not
    exist yet takes the primary key a migration creates it with (it runs
    first: phase run_migration); other missing tables are left out
    (preflight blocks them).
    """
    wanted: dict[str, str] = {}
    for table, (read, _listed) in sorted(request.identity_needs.items()):
        info = tables.get(table)
        if info is not None and info.exists:
            key = list(info.pk_columns)
        else:
            key = list(request.created_keys.get(table, ()))
        if not key:
            continue
        extra = [c for c in read if c not in key]
        if extra:
            wanted[table] = "index(" + ",".join(key + extra) + ")"
    return wanted


def slot_status(native: Mapping[str, Any]) -> dict[str, str]:
    """wal_status of every pgoutput slot of this database, sync slots included."""
    return {r["slot"]: r["wal_status"] for r in native.get("slots") or []}


def subscription_facts(native: Mapping[str, Any]) -> dict[str, SubscriptionFacts]:
    """Native subscription -> its slot on the provider and whether its initial sync finished.

    One without a slot (created with slot_name = NONE) streams from nothing: left out.
    """
    return {
        r["name"]: SubscriptionFacts(slot=r["slot_name"], synced=bool(r["synced"]))
        for r in sorted(native.get("subscriptions") or [], key=lambda r: str(r["name"]))
        if r["slot_name"]
    }
