"""What to ask one node (pure): declared tables, filters to normalise, expected slot names, SQL texts."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pglast.parser import ParseError

from reconciler import db
from reconciler import dsn as dsnlib
from reconciler.heartbeat import HEARTBEAT_TABLE
from reconciler.model import DesiredState, Engine, NodeCatalog, Operation
from reconciler.row_filter import (
    FilterRefused,
    check_row_filter,
    filter_columns,
    filter_sql,
    is_self_contained,
    probed_columns,
    regex_patterns,
)
from reconciler.topology import Edge, edges

# The native engine's catalog queries (inspect/native/*.sql), each one JSON value.
NATIVE_QUERIES = ("publications", "subscriptions", "slots", "identities")


def sql_text(name: str) -> str:
    """The text of one of inspection's .sql files, e.g. 'server' or 'pglogical/node'."""
    return db.sql_text("reconciler.inspect", name)


@dataclass(frozen=True)
class FilterProbe:
    """One desired row filter to normalise on the node: its installed text (row_filter.filter_sql)."""

    set_name: str
    table: str
    installed: str
    # Its normal form may be remembered (row_filter.is_self_contained).
    cacheable: bool = False
    # (pattern, case-insensitive) of its regular expressions: the probe
    # compiles each one, so an invalid one is a plan-time problem, not an
    # error in the provider's walsender.
    regexes: tuple[tuple[str, bool], ...] = ()
    # Columns the probe checks in the catalog (row_filter.probed_columns):
    # matched by LIKE or a regular expression (a nondeterministic collation
    # raises), compared (an array or composite can raise).
    pattern_columns: tuple[str, ...] = ()
    compared_columns: tuple[str, ...] = ()


def probe_input(probe: FilterProbe) -> dict[str, Any]:
    """What probe.sql reads of one filter: every part a JSON value, the filter text already re-emitted."""
    schema, _, table = probe.table.partition(".")
    return {
        "schema": schema,
        "table": table,
        "filter": probe.installed,
        "regexes": [{"pattern": pattern, "icase": icase} for pattern, icase in probe.regexes],
        "pattern_columns": list(probe.pattern_columns),
        "compared_columns": list(probe.compared_columns),
    }


@dataclass(frozen=True)
class Request:
    node: str
    input: dict[str, Any]  # JSON handed to the node (input.sql): tables, expected slots, filters
    probes: tuple[FilterProbe, ...]  # every desired filter to normalise, in the order of input["filters"]
    problems: tuple[str, ...]  # filters refused before they reach the node
    engine: Engine = Engine.PGLOGICAL
    # Subscriptions declared on this node: when one is missing live, it will
    # be created, and whether its tables hold rows decides the initial COPY.
    subscriptions: tuple[str, ...] = ()
    # Native engine only (pg_subscription records no provider node name):
    # subscription name -> provider node for this node's declared edges, and
    # declared DSN -> node, to name the provider of any other subscription.
    providers: dict[str, str] = field(default_factory=dict)
    dsn_nodes: dict[str, str] = field(default_factory=dict)
    # Native engine only: table -> (columns its filters read, whether a set
    # lists its columns), for tables published with a filter and with
    # updates or deletes: they need a replica identity covering the filter.
    identity_needs: dict[str, tuple[tuple[str, ...], bool]] = field(default_factory=dict)
    # Native engine only: table -> primary key, of tables the migrations create
    # (a table a pending migration creates needs its identity planned before it exists).
    created_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)


def subscriber_database(state: DesiredState, node: str) -> str:
    """The database name a node's DSN connects to, as libpq defaults it (dbname, else user)."""
    params = dsnlib.parse(state.nodes[node].dsn)
    return params.get("dbname") or params.get("user") or getpass.getuser()


def expected_slots(
    state: DesiredState, node: str, all_edges: Sequence[Edge] | None = None
) -> list[dict[str, str]]:
    """Every declared edge `node` provides, as pglogical names its slot from it (slot_names.sql)."""
    return [
        {
            "db": subscriber_database(state, e.subscriber),
            "provider": e.provider,
            "subscription": e.subscription,
        }
        for e in (edges(state) if all_edges is None else all_edges)
        if e.provider == node
    ]


@cache
def _refused(row_filter: str) -> tuple[str, ...]:
    # Every node is asked about the same few filters: parse each once.
    return tuple(check_row_filter(row_filter))


def build_request(
    state: DesiredState,
    node: str,
    desired: NodeCatalog,
    all_edges: Sequence[Edge] | None = None,
) -> Request:
    """Everything one node is asked, from the declaration and the node's desired catalog.

    `all_edges`: topology.edges(state), when the caller computed it already
    (it is quadratic in the number of nodes; a network asks once).
    """
    declared_filters = {
        (set_name, table): decl.row_filter
        for set_name, s in state.replication_sets.items()
        for table, decl in s.tables.items()
    }
    probes: list[FilterProbe] = []
    problems: list[str] = []
    for set_name, rset in sorted(desired.sets.items()):
        for table, entry in sorted(rset.tables.items()):
            if entry.row_filter is None:
                continue
            # The probe puts the filter into DDL, as pglogical itself does.
            # load.py already refused anything not allowed; this re-check
            # keeps the probe safe for a DesiredState or catalog built by
            # other means, and what is sent is the text filter_sql wrote.
            raw = declared_filters.get((set_name, table)) or entry.row_filter
            refused = _refused(raw)
            if not refused:
                try:
                    # The installed form is the tool's own text, longer than the
                    # declared one: held to filter_sql's limits, not the loader's.
                    installed = filter_sql(entry.row_filter)
                except FilterRefused as exc:
                    refused = (str(exc),)
            if refused:
                problems.extend(f"{table}: {reason}" for reason in refused)
                continue
            patterns, compared = probed_columns(installed)
            probes.append(
                FilterProbe(
                    set_name,
                    table,
                    installed,
                    # A collation is not in the cache's signature (format_type
                    # of each column): a filter whose answer depends on one is
                    # probed every time.
                    is_self_contained(raw) and not patterns,
                    regex_patterns(installed),
                    patterns,
                    compared,
                )
            )
    tables = sorted({t for s in state.replication_sets.values() for t in s.tables})
    if state.monitoring.heartbeat:
        # Read like a declared table: whether it exists (the diff creates it
        # where it does not) and whether it holds rows (a COPY onto beats fails).
        tables = sorted({*tables, HEARTBEAT_TABLE})
    payload: dict[str, Any] = {
        "filters": [probe_input(p) for p in probes],
        "tables": [{"name": t, "schema": t.partition(".")[0], "table": t.partition(".")[2]} for t in tables],
        "expected_slots": expected_slots(state, node, all_edges),
    }
    declared = tuple(sorted(desired.subscriptions))
    if state.engine is not Engine.NATIVE:
        return Request(
            node=node, input=payload, probes=tuple(probes), problems=tuple(problems), subscriptions=declared
        )
    mine = [e for e in (edges(state) if all_edges is None else all_edges) if e.subscriber == node]
    return Request(
        node=node,
        input=payload,
        probes=tuple(probes),
        problems=tuple(problems),
        engine=state.engine,
        subscriptions=declared,
        providers={e.subscription: e.provider for e in mine},
        dsn_nodes={decl.dsn: name for name, decl in sorted(state.nodes.items())},
        identity_needs=identity_needs(state),
        created_keys={table: key for m in state.migrations for table, key in sorted(m.keys.items())},
    )


def identity_needs(state: DesiredState) -> dict[str, tuple[tuple[str, ...], bool]]:
    """Tables whose native publication filter must be covered by the replica identity.

    Only sets that publish updates or deletes matter: PostgreSQL checks the
    replica identity when an UPDATE or DELETE is published.
    """
    read: dict[str, set[str]] = {}
    listed: dict[str, bool] = {}
    for decl in state.replication_sets.values():
        if Operation.UPDATE not in decl.replicate and Operation.DELETE not in decl.replicate:
            continue
        for table, tdecl in decl.tables.items():
            if tdecl.row_filter is None:
                continue
            try:
                columns = filter_columns(tdecl.row_filter)
            except ParseError:
                continue  # load.py and preflight report it
            read.setdefault(table, set()).update(columns)
            listed[table] = listed.get(table, False) or tdecl.columns is not None
    return {table: (tuple(sorted(read[table])), listed[table]) for table in sorted(read)}
