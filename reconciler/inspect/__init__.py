"""Live inspection: every node's pglogical catalogs and preflight facts, one round trip each, all at once.

Flow per node: `request` (pure: what to ask) -> `read` (one connection, one
pipelined batch with a single Sync, rolled back) -> `normalise` (pure: raw
answer -> NodeFacts). The catalog queries are the .sql files of this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from reconciler.errors import ConnectError, InspectError
from reconciler.inspect.facts import (
    ColumnFacts,
    InspectResult,
    InspectStats,
    NodeFacts,
    TableFacts,
)
from reconciler.inspect.normalise import node_facts
from reconciler.inspect.read import read_node
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


def inspect_node(
    state: DesiredState,
    node: str,
    desired: NodeCatalog,
    timeout: float = 10.0,
    all_edges: Sequence[Edge] | None = None,
) -> NodeFacts:
    """Read one node; raises ConnectError or InspectError with a secret-free reason."""
    request = build_request(state, node, desired, all_edges)
    raw, stats = read_node(state.nodes[node].connect_dsn, request, timeout)
    return node_facts(request, desired, raw, stats)


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
    workers = max(1, min(parallelism, len(names)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inspect") as pool:
        futures: dict[str, Future[NodeFacts]] = {
            name: pool.submit(inspect_node, state, name, desired[name], timeout, all_edges) for name in names
        }
        for name in names:
            try:
                facts[name] = futures[name].result()
            except (ConnectError, InspectError) as exc:
                unreachable[name] = str(exc)
    return InspectResult(facts=facts, unreachable=unreachable)
