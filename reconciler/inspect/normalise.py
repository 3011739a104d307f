"""A node's raw answer -> NodeFacts (pure): live catalog normalised, desired filters normalised."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from reconciler.inspect import native as native_inspect
from reconciler.inspect.facts import ColumnFacts, InspectStats, NodeFacts, TableFacts
from reconciler.inspect.request import Request
from reconciler.model import BUILTIN_SETS, NodeCatalog, ReplicationSet, SetTable, Subscription


@dataclass(frozen=True)
class RawAnswer:
    """What the node said, as decoded JSON: one value per statement of the batch."""

    server: dict[str, Any]
    tables: dict[str, Any]
    filters: list[dict[str, Any]]  # aligned with Request.probes: {"expr": ...} or {"error": ...}
    pglogical: dict[str, Any] | None  # None: the extension is not installed
    native: dict[str, Any] | None = None  # None: engine pglogical (or a server before 15)


def live_catalog(pglogical: dict[str, Any] | None, database_slots: list[str]) -> NodeCatalog:
    """pglogical's catalogs in the model's form: built-in sets dropped, lists sorted."""
    if pglogical is None:
        # Without the extension no subscription can use a pglogical slot.
        return NodeCatalog(orphan_slots=tuple(sorted(database_slots)))
    node = pglogical.get("node") or {}
    sets = {}
    for row in pglogical.get("sets") or []:
        if row["name"] in BUILTIN_SETS:
            continue
        sets[row["name"]] = ReplicationSet(
            name=row["name"],
            replicate_insert=row["replicate_insert"],
            replicate_update=row["replicate_update"],
            replicate_delete=row["replicate_delete"],
            replicate_truncate=row["replicate_truncate"],
            tables={
                t["table"]: SetTable(
                    row_filter=t["row_filter"],
                    # pglogical keeps the list in the caller's order; order is
                    # irrelevant to replication, so both sides compare sorted.
                    columns=tuple(sorted(t["columns"])) if t["columns"] is not None else None,
                )
                for t in sorted(row["tables"], key=lambda t: str(t["table"]))
            },
        )
    subscriptions = {
        row["name"]: Subscription(
            name=row["name"],
            provider_node=row["provider_node"],
            provider_dsn=row["provider_dsn"],
            replication_sets=tuple(sorted(row["replication_sets"])),
            forward_origins=tuple(sorted(row["forward_origins"])),
            enabled=row["enabled"],
        )
        for row in sorted(pglogical.get("subscriptions") or [], key=lambda r: str(r["name"]))
    }
    return NodeCatalog(
        node_name=node.get("node_name"),
        dsn=node.get("dsn"),
        sets=dict(sorted(sets.items())),
        subscriptions=subscriptions,
        orphan_slots=tuple(sorted(pglogical.get("orphan_slots") or [])),
    )


def table_facts(raw: dict[str, Any]) -> TableFacts:
    if not raw.get("exists"):
        return TableFacts(exists=False)
    return TableFacts(
        exists=True,
        columns={name: ColumnFacts(type=typ, not_null=nn) for name, typ, nn in raw["columns"]},
        pk_columns=tuple(name for name, _ in raw["primary_key"]),
        pk_types=tuple(typ for _, typ in raw["primary_key"]),
        replica_identity=raw["replica_identity"],
        has_rows=bool(raw.get("has_rows")),
    )


def _problem_text(message: str) -> str:
    # The probe is a CHECK constraint, so PostgreSQL words a type error after
    # it; pglogical would say "row_filter" instead.
    return message.replace("argument of CHECK constraint", "row filter")


def normalise_desired(
    desired: NodeCatalog, request: Request, answers: list[dict[str, Any]]
) -> tuple[NodeCatalog, list[str]]:
    """Desired catalog with each probed filter replaced by the node's normal form, and problems."""
    problems = set(request.problems)
    normal: dict[tuple[str, str], str] = {}
    for probe, answer in zip(request.probes, answers, strict=True):
        if "expr" in answer and answer["expr"] is not None:
            normal[(probe.set_name, probe.table)] = answer["expr"]
        else:
            problems.add(f"{probe.table}: {_problem_text(str(answer.get('error')))}")
    sets = {
        name: rset.model_copy(
            update={
                "tables": {
                    table: entry.model_copy(
                        update={"row_filter": normal.get((name, table), entry.row_filter)}
                    )
                    for table, entry in rset.tables.items()
                }
            }
        )
        for name, rset in desired.sets.items()
    }
    return desired.model_copy(update={"sets": sets}), sorted(problems)


def fingerprint(live: NodeCatalog, server: dict[str, Any], tables: dict[str, TableFacts]) -> str:
    """sha256 of the canonical JSON of what the node holds (never of desired state or timings)."""
    document = {
        "live": live.model_dump(mode="json"),
        # Slots come and go with syncs, and wal_status moves with WAL volume:
        # neither is catalog state a saved plan depends on.
        "server": {k: server[k] for k in sorted(server) if k not in ("pglogical_slots", "slot_status")},
        # Rows come and go all day; a saved plan depends on catalogs, not data.
        "tables": {
            name: t.model_dump(mode="json", exclude={"has_rows"}) for name, t in sorted(tables.items())
        },
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def node_facts(request: Request, desired: NodeCatalog, raw: RawAnswer, stats: InspectStats) -> NodeFacts:
    server = raw.server
    live = live_catalog(raw.pglogical, list(server.get("pglogical_slots") or []))
    tables = {name: table_facts(raw.tables.get(name, {})) for name in sorted(raw.tables)}
    for entry in request.input["tables"]:
        tables.setdefault(entry["name"], TableFacts(exists=False))
    normalised, problems = normalise_desired(desired, request, raw.filters)
    slots = {row["name"]: row["slot_name"] for row in (raw.pglogical or {}).get("subscriptions") or []}
    synced = {
        row["name"]: bool(row.get("synced")) for row in (raw.pglogical or {}).get("subscriptions") or []
    }
    slot_status = dict(server.get("slot_status") or {})
    if request.engine == "native":
        # pglogical's catalogs, if any, only tell which subscriptions must
        # still be switched over and which pglogical slots are orphans.
        native = raw.native or {}
        live = native_inspect.live_catalog(native, request, live.subscriptions, live.orphan_slots)
        normalised = normalised.model_copy(
            update={"replica_identities": native_inspect.desired_identities(request, tables)}
        )
        slots = native_inspect.subscription_slots(native, slots)
        synced = native_inspect.subscription_synced(native)
        slot_status.update(native_inspect.slot_status(native))
    return NodeFacts(
        node=request.node,
        live=live,
        desired=normalised,
        server_version=server["server_version"],
        server_version_num=server["server_version_num"],
        pglogical_version=server["pglogical_version"],
        wal_level=server["wal_level"],
        shared_preload_libraries=server["shared_preload_libraries"],
        max_slot_wal_keep_size=server["max_slot_wal_keep_size"],
        system_identifier=server["system_identifier"],
        database=server["database"],
        tables=dict(sorted(tables.items())),
        filter_problems=problems,
        fingerprint=fingerprint(live, server, tables),
        stats=stats,
        subscription_slots=dict(sorted(slots.items())),
        subscription_synced=dict(sorted(synced.items())),
        slot_status=dict(sorted(slot_status.items())),
        output_plugin_libraries=server.get("output_plugin_libraries"),
    )
