"""What to ask one node (pure): declared tables, filters to normalise, expected slot names, SQL texts."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from psycopg import sql

from reconciler import dsn as dsnlib
from reconciler.model import DesiredState, NodeCatalog
from reconciler.row_filter import check_row_filter
from reconciler.topology import Edge, edges

# The catalog queries run inside probe.sql's DO block, and only when the
# extension exists; each returns one JSON value. Key = what it reads.
PGLOGICAL_QUERIES = ("node", "sets", "subscriptions", "orphan_slots")


@cache
def sql_text(name: str) -> str:
    """The text of a .sql file of this package, e.g. 'server' or 'pglogical/node'."""
    path = files("reconciler.inspect")
    *folders, stem = name.split("/")
    for folder in folders:
        path = path / folder
    return (path / f"{stem}.sql").read_text(encoding="utf-8")


def statement(name: str) -> sql.SQL:
    # File text shipped with the package: trusted, never user input.
    return sql.SQL(sql_text(name))


@dataclass(frozen=True)
class FilterProbe:
    """One desired row filter to normalise on the node: the installed text."""

    set_name: str
    table: str
    installed: str


@dataclass(frozen=True)
class Request:
    node: str
    input: dict[str, Any]  # JSON handed to the node (input.sql)
    probes: tuple[FilterProbe, ...]  # in the order of input["filters"]
    problems: tuple[str, ...]  # filters refused before they reach the node


def subscriber_database(state: DesiredState, node: str) -> str:
    """The database name a node's DSN connects to, as libpq defaults it (dbname, else user)."""
    params = dsnlib.parse(state.nodes[node].dsn)
    return params.get("dbname") or params.get("user") or getpass.getuser()


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
            # Defence in depth: the probe splices the filter into DDL, as
            # pglogical itself does; load.py already refused anything that is
            # not exactly one expression, this re-check keeps the probe safe
            # for a DesiredState built by other means.
            raw = declared_filters.get((set_name, table)) or entry.row_filter
            refused = _refused(raw)
            if refused:
                problems.extend(f"{table}: {reason}" for reason in refused)
                continue
            probes.append(FilterProbe(set_name, table, entry.row_filter))
    tables = sorted({t for s in state.replication_sets.values() for t in s.tables})
    expected_slots = [
        {
            "db": subscriber_database(state, e.subscriber),
            "provider": e.provider,
            "subscription": e.subscription,
        }
        for e in (edges(state) if all_edges is None else all_edges)
        if e.provider == node
    ]
    payload: dict[str, Any] = {
        "filters": [
            {
                "schema": p.table.partition(".")[0],
                "table": p.table.partition(".")[2],
                "filter": p.installed,
            }
            for p in probes
        ],
        "tables": [{"name": t, "schema": t.partition(".")[0], "table": t.partition(".")[2]} for t in tables],
        "expected_slots": expected_slots,
        "queries": {kind: sql_text(f"pglogical/{kind}") for kind in PGLOGICAL_QUERIES},
    }
    return Request(node=node, input=payload, probes=tuple(probes), problems=tuple(problems))
