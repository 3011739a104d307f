"""Preflight: problems only a live node can reveal, reported as blocking errors in the plan."""

from __future__ import annotations

from itertools import combinations

from pglast.parser import ParseError

from reconciler.capacity import shortfalls
from reconciler.inspect.facts import InspectResult, NodeFacts, TableFacts
from reconciler.model import DesiredState, Engine, Frozen
from reconciler.row_filter import filter_columns
from reconciler.topology import edges


class Blocker(Frozen):
    """A problem that stops `plan` (exit 1) and makes `apply` refuse, naming node and table."""

    node: str
    table: str | None = None
    message: str
    # Set for a problem of one edge (node subscribes to provider): it holds back
    # only that edge's actions and what waits on them; any other blocker holds
    # back the whole apply.
    provider: str | None = None


def preflight(state: DesiredState, result: InspectResult) -> list[Blocker]:
    """Every blocking problem of the inspected nodes, sorted by (node, table, message).

    Pure: reads only the desired state and the facts inspection gathered.
    Unreachable nodes are the plan's business (exit 3), not blockers.
    """
    blockers: list[Blocker] = []
    for _, facts in sorted(result.facts.items()):
        blockers += _server_blockers(state, facts)
        blockers += _table_blockers(state, facts)
        if state.engine is Engine.NATIVE:
            blockers += _native_blockers(state, facts)
    blockers += _edge_blockers(state, result)
    blockers += _sharing_blockers(state, result)
    blockers += _capacity_blockers(state, result)
    return sorted(set(blockers), key=lambda b: (b.node, b.table or "", b.message))


def _server_blockers(state: DesiredState, facts: NodeFacts) -> list[Blocker]:
    found: list[str] = []
    if state.engine is Engine.PGLOGICAL:
        if facts.pglogical_version is None:
            found.append("pglogical extension is not installed in this database")
        libraries = {lib.strip().strip('"').lower() for lib in facts.shared_preload_libraries.split(",")}
        if "pglogical" not in libraries:
            found.append(
                "pglogical is not in shared_preload_libraries "
                f"({facts.shared_preload_libraries or 'empty'}); it needs a server restart"
            )
        # Hardened builds only decode with listed output plugins; a provider
        # without pglogical_output leaves every subscription to it `down`.
        allowed = facts.output_plugin_libraries
        is_provider = state.nodes[facts.node].upstream is not None
        listed = {lib.strip().strip('"') for lib in (allowed or "").split(",")}
        if is_provider and allowed is not None and "pglogical_output" not in listed:
            found.append(
                f"output_plugin_libraries ({allowed or 'empty'}) does not list pglogical_output, so "
                "subscriptions to this node stay down; add it and reload (no restart needed)"
            )
    if facts.wal_level != "logical":
        found.append(f"wal_level is {facts.wal_level}, not logical; it needs a server restart")
    return [Blocker(node=facts.node, message=m) for m in found]


def _native_blockers(state: DesiredState, facts: NodeFacts) -> list[Blocker]:
    """What PostgreSQL's own logical replication needs that pglogical does not."""
    out: list[Blocker] = []
    if facts.server_version_num < 150000:
        out.append(
            Blocker(
                node=facts.node,
                message=f"the native engine needs PostgreSQL 15 or later (row filters, column lists);"
                f" this server is {facts.server_version}",
            )
        )
    for set_name, decl in sorted(state.replication_sets.items()):
        for table, tdecl in sorted(decl.tables.items()):
            if tdecl.columns is None or tdecl.row_filter is None:
                continue
            try:
                read = filter_columns(tdecl.row_filter)
            except ParseError:
                continue
            # The replica identity must cover the filter and the column list the
            # identity, or PostgreSQL refuses UPDATE/DELETE on the table (measured).
            for column in sorted(read - set(tdecl.columns)):
                out.append(
                    Blocker(
                        node=facts.node,
                        table=table,
                        message=f"row filter of set {set_name} reads column {column}, which its column list"
                        " leaves out (PostgreSQL would refuse UPDATE and DELETE on the table)",
                    )
                )
    return out


def _table_blockers(state: DesiredState, facts: NodeFacts) -> list[Blocker]:
    out: list[Blocker] = []
    missing = {name for name, t in facts.tables.items() if not t.exists}
    # A table a migration not yet run here creates: it exists before it is added to a set.
    coming = {t for m in state.migrations if m.name not in facts.state.migrations for t in m.creates}
    for set_name, decl in sorted(state.replication_sets.items()):
        for table, tdecl in sorted(decl.tables.items()):
            info = facts.tables.get(table, TableFacts(exists=False))
            if not info.exists and table in coming:
                continue
            for message in _table_problems(info, tdecl.columns, tdecl.row_filter, set_name, state.engine):
                out.append(Blocker(node=facts.node, table=table, message=message))
    for problem in facts.filter_problems:
        table, _, message = problem.partition(": ")
        # A missing table is reported once, as missing, not again by each filter.
        if table not in missing:
            out.append(Blocker(node=facts.node, table=table, message=f"row filter: {message}"))
    return out


def _table_problems(
    info: TableFacts, columns: tuple[str, ...] | None, row_filter: str | None, set_name: str, engine: Engine
) -> list[str]:
    if not info.exists:
        return ["table does not exist"]
    found: list[str] = []
    if not info.pk_columns:
        found.append("table has no primary key (pglogical needs one to replicate updates)")
    for column, typ in zip(info.pk_columns, info.pk_types, strict=True):
        if typ != "uuid":
            # Rows from many districts meet at a region: only UUID keys cannot collide.
            found.append(f"primary key column {column} is {typ}, not uuid")
    if columns is not None:
        for column in info.pk_columns:
            if column not in columns:
                found.append(f"column list of set {set_name} lacks primary key column {column}")
        for column in columns:
            if column not in info.columns:
                found.append(f"column list of set {set_name} names missing column {column}")
    # Only pglogical needs it: its filters are installed as `(<filter>) IS NOT
    # FALSE`; native filters are installed as written.
    if row_filter is not None and engine is Engine.PGLOGICAL:
        try:
            read = filter_columns(row_filter)
        except ParseError:
            read = frozenset()  # load.py reports unparsable filters
        for column in sorted(read):
            col = info.columns.get(column)
            if col is not None and not col.not_null:
                # `(<filter>) IS NOT FALSE` lets NULL through: same as the plain
                # filter only when every column it reads is NOT NULL.
                found.append(f"row filter of set {set_name} reads column {column}, which allows NULL")
    return found


def _replicated(columns: dict[str, str], listed: set[str] | None) -> dict[str, str]:
    return {c: t for c, t in columns.items() if listed is None or c in listed}


def _edge_blockers(state: DesiredState, result: InspectResult) -> list[Blocker]:
    """Tables an edge cannot carry, by the engines' real rule (measured, REPLICATION-NOTES
    "Living networks"): a subscriber may hold columns its provider does not send when they
    allow NULL or have a default; a provider may not send a column its subscriber lacks,
    nor one of another type. Each problem blocks that edge only."""
    listed: dict[str, set[str] | None] = {}
    for decl in state.replication_sets.values():
        for table, tdecl in decl.tables.items():
            cols = set(tdecl.columns) if tdecl.columns is not None else None
            prev = listed.get(table, set())
            # A table in several sets: the union of what they replicate.
            listed[table] = None if cols is None or prev is None else prev | cols
    out: list[Blocker] = []
    for edge in edges(state):
        sub = result.facts.get(edge.subscriber)
        prov = result.facts.get(edge.provider)
        if sub is None or prov is None:
            continue
        for table in sorted(listed):
            s_info, p_info = sub.tables.get(table), prov.tables.get(table)
            if s_info is None or p_info is None or not s_info.exists or not p_info.exists:
                continue
            for problem in _edge_problems(edge.provider, edge.subscriber, s_info, p_info, listed[table]):
                out.append(
                    Blocker(
                        node=edge.subscriber,
                        provider=edge.provider,
                        table=table,
                        message=f"edge {edge.provider} -> {edge.subscriber}: {problem}",
                    )
                )
    return out


def _edge_problems(
    provider: str, subscriber: str, here: TableFacts, there: TableFacts, listed: set[str] | None
) -> list[str]:
    """What `provider` sends of one table that `subscriber` cannot take, each with its fix."""
    sent = _replicated({c: f.type for c, f in there.columns.items()}, listed)
    found: list[str] = []
    for column, typ in sorted(sent.items()):
        mine = here.columns.get(column)
        if mine is None:
            found.append(
                f"{provider} sends column {column} ({typ}), which {subscriber} lacks; fix: add it at"
                f" {subscriber} and every tier above before {provider} sends it (a migration: apply runs it"
                f" top-down), or drop it at {provider} (a leaves-first migration)"
            )
        elif mine.type != typ:
            found.append(
                f"column {column} is {typ} at {provider} but {mine.type} at {subscriber}; fix: a migration"
                " that gives it one type on both ends"
            )
    for column, info in sorted(here.columns.items()):
        if column not in sent and info.not_null and not info.has_default:
            found.append(
                f"{subscriber} has column {column} NOT NULL without a default, which {provider} does not"
                f" send, so no row from {provider} can be applied; fix: give it a default or allow NULL"
            )
    return found


def _sharing_blockers(state: DesiredState, result: InspectResult) -> list[Blocker]:
    """Nodes that share what they must not: one database, or one server across levels.

    Both are read live, so every spelling of an address counts: nodes with
    one system_identifier are on one server, and with one database oid as
    well they are one database. The desired state can name a database twice
    (two host spellings, a proxy's port, an admin_dsn pointing at another
    node's database); the plan would then manage one database as two nodes,
    e.g. drop the pglogical node the other name created. Nodes of different
    levels on one server crash it (pglogical forwarding).
    """
    servers: dict[str, list[str]] = {}
    for name, f in sorted(result.facts.items()):
        servers.setdefault(f.system_identifier, []).append(name)
    out: list[Blocker] = []
    for sysid, names in sorted(servers.items()):
        for a, b in combinations(names, 2):
            fa, fb = result.facts[a], result.facts[b]
            la, lb = state.nodes[a].level, state.nodes[b].level
            if fa.database_oid == fb.database_oid:
                why = (
                    f"(system_identifier {sysid}, database {fa.database}, oid {fa.database_oid}); "
                    "each node needs a database of its own: check dsn and admin_dsn of both"
                )
                out.append(Blocker(node=a, message=f"reaches the same database as node {b} {why}"))
                out.append(Blocker(node=b, message=f"reaches the same database as node {a} {why}"))
            elif la != lb:
                why = f"(system_identifier {sysid}); pglogical forwarding crashes a server holding two levels"
                out.append(Blocker(node=a, message=f"same PostgreSQL server as {b} (level {lb}) {why}"))
                out.append(Blocker(node=b, message=f"same PostgreSQL server as {a} (level {la}) {why}"))
    return out


def _capacity_blockers(state: DesiredState, result: InspectResult) -> list[Blocker]:
    """Each server whose settings cannot carry the declared nodes on it blocks every one of them.

    Nodes on one server are those read with one system_identifier; a node not
    read is not counted (its server's need is then understated, never overstated).
    """
    servers: dict[str, list[NodeFacts]] = {}
    for _, facts in sorted(result.facts.items()):
        if facts.capacity is not None:
            servers.setdefault(facts.system_identifier, []).append(facts)
    out: list[Blocker] = []
    for members in servers.values():
        capacity = members[0].capacity
        assert capacity is not None
        for message in shortfalls(state, [f.node for f in members], capacity):
            out += [Blocker(node=f.node, message=message) for f in members]
    return out
