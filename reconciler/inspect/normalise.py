"""A node's raw answer -> NodeFacts (pure): rows joined into the live catalog, desired filters normalised."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from reconciler.capacity import Capacity
from reconciler.inspect import native as native_inspect
from reconciler.inspect import server_log
from reconciler.inspect.facts import ColumnFacts, InspectStats, NodeFacts, TableFacts
from reconciler.inspect.read import RawAnswer, server_facts
from reconciler.inspect.request import NATIVE_QUERIES, FilterProbe, Request
from reconciler.inspect.slots import orphans
from reconciler.live import LiveNode, SlotStatus, SubscriptionFacts
from reconciler.model import BUILTIN_SETS, Engine, NodeCatalog, ReplicationSet, SetTable, Subscription

PGLOGICAL_PLUGIN = "pglogical_output"


def pglogical_catalog(raw: RawAnswer, orphans: list[str]) -> NodeCatalog:
    """pglogical's catalogs in the model's form: rows joined, built-in sets dropped, lists sorted."""
    names: dict[int, str] = {}
    dsns: dict[int, str] = {}  # interface -> DSN
    local: tuple[int, int] | None = None  # (node, its interface)
    for kind, key, ref, text in raw.rows.get("pglogical/node") or []:
        if kind == "local":
            local = (key, ref)
        elif kind == "node":
            names[key] = text
        else:
            dsns[key] = text
    tables: dict[int, dict[str, SetTable]] = {}
    for set_id, schema, name, columns, row_filter in raw.rows.get("pglogical/set_tables") or []:
        tables.setdefault(set_id, {})[f"{schema}.{name}"] = SetTable(
            row_filter=row_filter,
            # pglogical keeps the list in the caller's order; order is
            # irrelevant to replication, so both sides compare sorted.
            columns=tuple(sorted(columns)) if columns is not None else None,
        )
    sets = {
        name: ReplicationSet(
            name=name,
            replicate_insert=ins,
            replicate_update=upd,
            replicate_delete=dele,
            replicate_truncate=trunc,
            tables=dict(sorted(tables.get(set_id, {}).items())),
        )
        for set_id, name, ins, upd, dele, trunc in raw.rows.get("pglogical/sets") or []
        if name not in BUILTIN_SETS
    }
    subscriptions = {
        name: Subscription(
            name=name,
            provider_node=names[origin],
            provider_dsn=dsns[interface],
            replication_sets=tuple(sorted(sets_ or [])),
            # pglogical stores forward_origins '{}' as NULL.
            forward_origins=tuple(sorted(origins or [])),
            enabled=enabled,
        )
        for name, origin, interface, sets_, origins, enabled, *_facts in sorted(
            raw.rows.get("pglogical/subscriptions") or []
        )
    }
    return NodeCatalog(
        node_name=names[local[0]] if local else None,
        dsn=dsns[local[1]] if local else None,
        sets=dict(sorted(sets.items())),
        subscriptions=subscriptions,
        orphan_slots=tuple(sorted(orphans)),
    )


def database_slots(raw: RawAnswer, server: dict[str, Any], plugin: str) -> dict[str, str]:
    """Slot -> wal_status of this database's slots of one output plugin."""
    return {
        name: status or "unknown"
        for name, slot_plugin, datoid, status in sorted(raw.rows.get("slots") or [])
        if slot_plugin == plugin and datoid == server["database_oid"]
    }


def orphan_slots(raw: RawAnswer, slots: dict[str, str]) -> list[str]:
    """pglogical slots of this database that no declared subscription to this node uses.

    Expected names come from pglogical itself (slot_names.sql); the rule,
    table syncs included, is inspect/slots.py's. Without the extension, every
    pglogical slot is an orphan.
    """
    expected = {slot: subscription for subscription, slot in raw.rows.get("pglogical/slot_names") or []}
    return orphans(slots, expected)


def table_facts(raw: RawAnswer, request: Request) -> dict[str, TableFacts]:
    """Every declared table as this node has it (exists False when it does not)."""
    columns: dict[int, list[tuple[int, str, str, bool, bool]]] = {}
    keys: dict[int, list[tuple[int, str, str]]] = {}  # (position in the key, column, type)
    for relid, attnum, name, typ, not_null, key_position, has_default in raw.rows.get("columns") or []:
        columns.setdefault(relid, []).append((attnum, name, typ, not_null, bool(has_default)))
        if key_position is not None:
            keys.setdefault(relid, []).append((key_position, name, typ))
    relations = raw.rows.get("relations") or []
    has_rows = {
        name: value
        for name, value in [(r[0], r[4]) for r in relations] + (raw.rows.get("pglogical/has_rows") or [])
        if value is not None
    }
    tables = {entry["name"]: TableFacts(exists=False) for entry in request.input["tables"]}
    for name, relid, relkind, replident, _ in relations:
        if relkind not in ("r", "p"):
            continue  # a view or sequence of that name is not a table
        ordered = sorted(columns.get(relid, []))
        key = [(column, typ) for _, column, typ in sorted(keys.get(relid, []))]
        tables[name] = TableFacts(
            exists=True,
            columns={
                column: ColumnFacts(type=typ, not_null=nn, has_default=default)
                for _, column, typ, nn, default in ordered
            },
            pk_columns=tuple(column for column, _ in key),
            pk_types=tuple(typ for _, typ in key),
            replica_identity=replident,
            has_rows=has_rows.get(name),
        )
    return dict(sorted(tables.items()))


def _problem_text(message: str) -> str:
    # The probe is a CHECK constraint, so PostgreSQL words a type error after
    # it; pglogical would say "row_filter" instead.
    return message.replace("argument of CHECK constraint", "row filter")


def normalise_desired(
    desired: NodeCatalog, request: Request, answers: Mapping[FilterProbe, dict[str, Any]]
) -> tuple[NodeCatalog, list[str]]:
    """Desired catalog with each filter replaced by the node's normal form, and problems."""
    problems = set(request.problems)
    normal: dict[tuple[str, str], str] = {}
    for probe in request.probes:
        answer = answers.get(probe, {"error": "not normalised"})
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


# server.sql's facts about the tool's own apply records: not what a plan depends on.
NOT_CATALOG = frozenset(
    {
        "last_apply_result",
        "apply_lock_held",
        "pending_rows",
        "log_readable",
        # Server settings read for the capacity check: a restart with more
        # workers must not make a saved plan stale.
        "max_worker_processes",
        "max_replication_slots",
        "max_wal_senders",
    }
)


def pending_tables(text: str | None) -> tuple[str, ...]:
    """server.sql's JSON array of the tables a node owes rows of; anything else reads as none."""
    try:
        found = json.loads(text or "[]")
    except ValueError:
        return ()
    if not isinstance(found, list):
        return ()
    return tuple(sorted({t for t in found if isinstance(t, str)}))


def last_apply(server: dict[str, Any]) -> str | None:
    """The newest apply record's result; `running` without the apply lock held reads `interrupted`."""
    result = server.get("last_apply_result")
    if result == "running" and not server.get("apply_lock_held"):
        return "interrupted"
    return str(result) if result is not None else None


def fingerprint(live: NodeCatalog, server: dict[str, Any], tables: dict[str, TableFacts]) -> str:
    """sha256 of the canonical JSON of what the node holds (never of desired state or timings)."""
    document = {
        "live": live.model_dump(mode="json"),
        # Slots come and go with syncs, and wal_status moves with WAL volume:
        # neither is catalog state a saved plan depends on (they are not here).
        "server": {k: server[k] for k in sorted(server) if k not in NOT_CATALOG},
        # Rows come and go all day; a saved plan depends on catalogs, not data.
        "tables": {
            name: t.model_dump(mode="json", exclude={"has_rows"}) for name, t in sorted(tables.items())
        },
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def worker_facts(raw: RawAnswer) -> dict[str, dict[str, Any]]:
    """Per pglogical subscription: worker_running, down_seconds and last_error (SubscriptionFacts' fields).

    The log was read (server_log_tail.sql) only when some enabled
    subscription has no worker; its times are the server's, as is read_at.
    """
    logged = raw.rows.get("server_log_tail") or []
    lines: list[server_log.LogLine] = []
    read_at: datetime | None = None
    if logged:
        _logfile, _collector, log_timezone, read_at_server, tail = logged[0]
        if tail is not None:
            read_at = read_at_server
            lines = server_log.tail_lines(tail, log_timezone)
    oldest = next((line.at for line in lines if line.at is not None), None)
    found: dict[str, dict[str, Any]] = {}
    for name, sub_id, database_oid, running, _enabled in raw.rows.get("pglogical/workers") or []:
        facts: dict[str, Any] = {"worker_running": bool(running)}
        if not running and read_at is not None:
            log = server_log.pglogical_worker(lines, database_oid, sub_id, name)
            # Down since its last failure or start; when the tail names
            # neither, for longer than the tail reaches back.
            since = (
                max((t for t in (log.failed_at, log.started_at) if t is not None), default=None)
                if log
                else None
            )
            since = since or oldest
            if since is not None:
                facts["down_seconds"] = max(0.0, round((read_at - since).total_seconds(), 3))
            facts["last_error"] = log.error if log is not None else None
        found[name] = facts
    return found


def node_facts(
    request: Request,
    desired: NodeCatalog,
    raw: RawAnswer,
    tables: dict[str, TableFacts],
    stats: InspectStats,
) -> NodeFacts:
    """The node's facts from its answer; `tables` is table_facts(raw, request), which the caller has."""
    server = server_facts(raw)
    slot_status = database_slots(raw, server, PGLOGICAL_PLUGIN)
    live = pglogical_catalog(raw, orphan_slots(raw, slot_status) if raw.pglogical else sorted(slot_status))
    normalised, problems = normalise_desired(desired, request, raw.filters)
    # name, ..., slot, synced, tables synced (pglogical/subscriptions.sql)
    workers = worker_facts(raw)
    subscriptions = {
        row[0]: SubscriptionFacts(
            slot=row[6],
            synced=bool(row[7]),
            tables_synced=tuple(sorted(row[8] or [])),
            **workers.get(row[0], {}),
        )
        for row in raw.rows.get("pglogical/subscriptions") or []
    }
    legacy: dict[str, SubscriptionFacts] = {}
    if request.engine == Engine.NATIVE:
        # pglogical's catalogs, if any, only tell which subscriptions must
        # still be switched over and which pglogical slots are orphans.
        # A server before 15 has no native catalogs (preflight blocks it): read as empty.
        native = {kind: raw.one(f"native/{kind}")[0] for kind in NATIVE_QUERIES} if raw.native else {}
        live = native_inspect.live_catalog(native, request, live.subscriptions, live.orphan_slots)
        normalised = normalised.model_copy(
            update={"replica_identities": native_inspect.desired_identities(request, tables)}
        )
        legacy, subscriptions = subscriptions, native_inspect.subscription_facts(native)
        slot_status.update(native_inspect.slot_status(native))
    state = LiveNode(
        catalog=live,
        subscriptions=dict(sorted(subscriptions.items())),
        legacy=dict(sorted(legacy.items())),
        slots={name: SlotStatus.of(status) for name, status in sorted(slot_status.items())},
        holds_rows=any(t.has_rows or (t.exists and t.has_rows is None) for t in tables.values()),
        columns={name: tuple(t.columns) for name, t in sorted(tables.items()) if t.exists},
        migrations=dict(json.loads(server["schema_migrations"] or "{}")),
        system_identifier=server["system_identifier"],
        max_slot_wal_keep_size=server["max_slot_wal_keep_size"],
    )
    return NodeFacts(
        node=request.node,
        state=state,
        desired=normalised,
        server_version=server["server_version"],
        server_version_num=server["server_version_num"],
        pglogical_version=server["pglogical_version"],
        wal_level=server["wal_level"],
        shared_preload_libraries=server["shared_preload_libraries"],
        system_identifier=server["system_identifier"],
        database=server["database"],
        database_oid=int(server["database_oid"]),
        tables=tables,
        filter_problems=problems,
        fingerprint=fingerprint(live, server, tables),
        last_apply=last_apply(server),
        pending_rows=pending_tables(server.get("pending_rows")),
        stats=stats,
        output_plugin_libraries=server["output_plugin_libraries"],
        capacity=Capacity(
            max_worker_processes=server["max_worker_processes"],
            max_replication_slots=server["max_replication_slots"],
            max_wal_senders=server["max_wal_senders"],
        ),
    )
