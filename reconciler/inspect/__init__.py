"""Live inspection: every node's pglogical catalogs and preflight facts, one round trip each, all at once.

Flow per node: `request` (pure: what to ask) -> `read` (one connection, one
pipelined batch with a single Sync, rolled back) -> `normalise` (pure: raw
answer -> NodeFacts). The catalog queries are the .sql files of this package.
Row filters already normalised on a node come from `filter_cache`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from reconciler import db
from reconciler.db import connect
from reconciler.errors import ConnectError, InspectError
from reconciler.inspect.facts import (
    ColumnFacts,
    InspectResult,
    InspectStats,
    NodeFacts,
    TableFacts,
)
from reconciler.inspect.filter_cache import Answer, FilterCache, connection_key, signature
from reconciler.inspect.normalise import node_facts, table_facts
from reconciler.inspect.read import (
    needs_worker_log,
    read_catalogs,
    read_probes,
    read_worker_log,
    server_facts,
)
from reconciler.inspect.request import build_request
from reconciler.model import DesiredState, NodeCatalog
from reconciler.topology import Edge, desired_catalogs, edges

__all__ = [
    "ColumnFacts",
    "InspectResult",
    "InspectStats",
    "NodeFacts",
    "TableFacts",
    "inspect_network",
    "inspect_node",
]


# Beyond its statements' own deadlines, how long a node's read may take before its socket is shut.
READ_MARGIN = 5.0

# Answers a node's facts relied on: connection key -> table -> installed filter -> answer.
Answers = dict[str, dict[str, dict[str, Answer]]]


def inspect_node(
    state: DesiredState,
    node: str,
    desired: NodeCatalog,
    timeout: float = 10.0,
    all_edges: Sequence[Edge] | None = None,
    cache: FilterCache | None = None,
    trace_fd: int | None = None,
) -> NodeFacts:
    """Read one node; raises ConnectError or InspectError with a secret-free reason.

    `trace_fd` (tests) receives libpq's protocol trace, to count the Syncs.
    """
    return _inspect(state, node, desired, timeout, all_edges, cache or FilterCache(None), trace_fd)[0]


def _inspect(
    state: DesiredState,
    node: str,
    desired: NodeCatalog,
    timeout: float,
    all_edges: Sequence[Edge] | None,
    cache: FilterCache,
    trace_fd: int | None = None,
) -> tuple[NodeFacts, Answers]:
    """One node's facts, and the normalised filters they relied on (for the cache to keep)."""
    request = build_request(state, node, desired, all_edges)
    dsn = state.nodes[node].connect_dsn
    database = connection_key(dsn)
    remembered = {
        p: cache.lookup(database, p.table, p.installed) if p.cacheable else None for p in request.probes
    }
    started = time.monotonic()
    # lock_timeout: the probe's CREATE TABLE ... LIKE takes ACCESS SHARE on
    # the real table; never queue behind an ACCESS EXCLUSIVE for long.
    with (
        connect(dsn, timeout=timeout, statement_timeout=timeout, lock_timeout=timeout) as conn,
        # Client-side too: a link that black-holes mid-read (TCP kept up by a
        # middlebox) is never ended by the server's timeouts. At most three
        # round trips, each bounded on the server by `timeout`.
        db.deadline(3 * timeout + READ_MARGIN, lambda: [conn]),
    ):
        unknown = tuple(p for p, a in remembered.items() if a is None)
        raw = read_catalogs(conn, dsn, request, unknown, trace_fd)
        round_trips = 1
        server = server_facts(raw)
        tables = table_facts(raw, request)

        def now(table: str) -> str:
            return signature(server, tables[table])

        # A remembered answer holds while the server and the table's columns are the same.
        stale = tuple(p for p, a in remembered.items() if a is not None and a.signature != now(p.table))
        if stale:
            raw.filters.update(read_probes(conn, dsn, request, stale, trace_fd))
            round_trips += 1
        if needs_worker_log(raw):
            raw.rows["server_log_tail"] = read_worker_log(conn, dsn, trace_fd)
            round_trips += 1
    for probe, answer in remembered.items():
        if answer is not None and probe not in stale:
            raw.filters[probe] = {"expr": answer.normal}
    stats = InspectStats(connections=1, round_trips=round_trips, seconds=round(time.monotonic() - started, 6))
    used: dict[str, dict[str, Answer]] = {}
    for probe, result in raw.filters.items():
        if probe.cacheable and result.get("expr") is not None:
            used.setdefault(probe.table, {})[probe.installed] = Answer(now(probe.table), result["expr"])
    return node_facts(request, desired, raw, tables, stats), {database: used}


def inspect_network(
    state: DesiredState,
    nodes: Sequence[str] | None = None,
    parallelism: int = 32,
    timeout: float = 10.0,
) -> InspectResult:
    """Read every node (or those named) concurrently; silent nodes land in `unreachable`.

    A node that answers but whose catalogs cannot be read (permissions, a
    timeout mid-batch) is also reported in `unreachable`, with the reason.
    """
    names = sorted(state.nodes) if nodes is None else sorted(set(nodes))
    unknown = [n for n in names if n not in state.nodes]
    if unknown:
        raise InspectError(f"unknown node(s): {', '.join(unknown)}")
    desired = desired_catalogs(state)
    all_edges = edges(state)
    facts: dict[str, NodeFacts] = {}
    unreachable: dict[str, str] = {}
    if not names:
        return InspectResult(facts=facts, unreachable=unreachable)
    cache = FilterCache.default()
    used: Answers = {}

    def read(name: str) -> tuple[NodeFacts, Answers] | str:
        try:
            return _inspect(state, name, desired[name], timeout, all_edges, cache)
        except (ConnectError, InspectError) as exc:
            return str(exc)  # the node is reported unreachable, the others are read

    for name, found in zip(names, db.fan_out(names, read, parallelism, name="inspect"), strict=True):
        if isinstance(found, str):
            unreachable[name] = found
        else:
            facts[name], answers = found
            used.update(answers)
    cache.save(used)
    return InspectResult(facts=facts, unreachable=unreachable)
