"""Pure: what verify compares for each subscriber (tables, filters, column lists, providers)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from reconciler.model import DesiredState
from reconciler.names import did_you_mean
from reconciler.row_filter import filter_sql
from reconciler.topology import edges


class TargetError(ValueError):
    """A --table or --node that names nothing in the desired state."""


@dataclass(frozen=True)
class TableCheck:
    """One table as verify sees it on every edge into a subscriber.

    `row_filter` is the declared filter as row_filter.filter_sql writes it
    (several sets holding the table: their filters AND-ed, as pglogical
    combines them); None means every row passes.
    `columns` is the declared column list (several lists: the columns common
    to all), None meaning every column both sides have.
    """

    table: str
    row_filter: str | None
    columns: tuple[str, ...] | None


@dataclass(frozen=True)
class SubscriberCheck:
    """A subscriber, the level index it sits at, its providers and its tables."""

    subscriber: str
    level: int
    providers: tuple[str, ...]
    tables: tuple[TableCheck, ...]
    # Nodes below its level, not under it, whose chain reaches one of its
    # ancestors by another path: a row here that no provider passes but one
    # of these holds is a moved node's history, not a stale row (see moved_from).
    elsewhere: tuple[str, ...] = ()


def moved_from(state: DesiredState, subscriber: str) -> tuple[str, ...]:
    """The nodes whose rows may sit at `subscriber` from before they moved to another parent.

    Those at any level below it, not under it, whose own chain reaches ANY
    ancestor of the subscriber: their rows reach that tier without passing
    here (a woreda moved from zone Z1 to zone Z2 of another region reaches
    the nation, Z1's grandparent, not Z1's region). A top node has none
    (nothing above it could hold a row twice).
    """
    node = state.nodes[subscriber]
    if node.upstream is None:
        return ()
    ancestors: set[str] = set()
    up: str | None = node.upstream
    while up is not None and up not in ancestors and up in state.nodes:
        ancestors.add(up)
        up = state.nodes[up].upstream
    level = state.level_index(node.level)
    found = []
    for name, other in sorted(state.nodes.items()):
        if state.level_index(other.level) >= level or other.upstream is None:
            continue
        seen: set[str] = set()
        chain: str | None = other.upstream
        while chain is not None and chain not in seen and chain != subscriber and chain not in ancestors:
            seen.add(chain)
            chain = state.nodes[chain].upstream if chain in state.nodes else None
        if chain is not None and chain in ancestors:
            found.append(name)
    return tuple(found)


def _table_checks(state: DesiredState, set_names: Sequence[str]) -> dict[str, TableCheck]:
    filters: dict[str, list[str]] = {}
    columns: dict[str, list[tuple[str, ...]]] = {}
    for set_name in sorted(set_names):
        for table, decl in sorted(state.replication_sets[set_name].tables.items()):
            filters.setdefault(table, [])
            columns.setdefault(table, [])
            if decl.row_filter is not None:
                filters[table].append(decl.row_filter)
            if decl.columns is not None:
                columns[table].append(tuple(decl.columns))
    result = {}
    for table in sorted(filters):
        found = filters[table]
        row_filter = None
        if found:
            # Each filter as filter_sql writes it (parenthesised or a single
            # name or call), so AND-ing their texts cannot change what one means.
            texts = [filter_sql(f) for f in found]
            row_filter = texts[0] if len(texts) == 1 else "(" + " AND ".join(texts) + ")"
        lists = columns[table]
        cols: tuple[str, ...] | None = None
        if lists:
            common = set(lists[0]).intersection(*lists[1:])
            cols = tuple(sorted(common))
        result[table] = TableCheck(table=table, row_filter=row_filter, columns=cols)
    return result


def _match_table(wanted: str, known: Sequence[str]) -> str:
    if wanted in known:
        return wanted
    qualified = f"public.{wanted}"
    if "." not in wanted and qualified in known:
        return qualified
    hint = did_you_mean(wanted, known) or did_you_mean(qualified, known)
    raise TargetError(
        f"--table {wanted}: not a declared table{hint} (declared: {', '.join(known) or 'none'})"
    )


def subscriber_checks(
    state: DesiredState,
    tables: Sequence[str] | None = None,
    nodes: Sequence[str] | None = None,
    scope: Mapping[str, Collection[str]] | None = None,
) -> list[SubscriberCheck]:
    """Every subscriber to verify, lowest level first, then by name.

    `scope` (subscriber -> declared tables; what an apply may have left
    wrong) narrows the checks to exactly those tables on those subscribers.

    `nodes` selects subscribers: a node that has providers selects itself, a
    node with an upstream selects that upstream (the subscriber holding its
    rows). Verify works per subscriber because its rows are checked against
    all of its providers at once (stale rows are those no provider passes).
    """
    providers: dict[str, list[str]] = {}
    sets: dict[str, tuple[str, ...]] = {}
    for edge in edges(state):
        providers.setdefault(edge.subscriber, []).append(edge.provider)
        sets[edge.subscriber] = tuple(sorted(set(sets.get(edge.subscriber, ())) | set(edge.sets)))
    # A middle-tier node left without children (its last one moved away) still
    # holds their rows: it is checked too, every row there is one no provider
    # passes, but only when the caller names it in `scope` (apply, after that
    # move). A childless node is otherwise a source like any leaf, whatever its
    # level: its own rows are never "stale".
    for name, decl in state.nodes.items():
        if scope is not None and name in scope and name not in providers and decl.upstream is not None:
            providers[name] = []
    selected = set(providers)
    if nodes:
        selected = set()
        for node in nodes:
            if node not in state.nodes:
                raise TargetError(f"--node {node}: not a declared node{did_you_mean(node, state.nodes)}")
            if node in providers:
                selected.add(node)
            upstream = state.nodes[node].upstream
            if upstream is not None:
                selected.add(upstream)
    all_tables = sorted({t for s in state.replication_sets.values() for t in s.tables})
    wanted = {_match_table(t, all_tables) for t in tables} if tables else None
    result = []
    if scope is not None:
        selected &= set(scope)
    for subscriber in sorted(selected):
        checks = _table_checks(state, sets.get(subscriber, tuple(state.replication_sets)))
        chosen = tuple(
            c
            for name, c in sorted(checks.items())
            if (wanted is None or name in wanted) and (scope is None or name in scope[subscriber])
        )
        if not chosen:
            continue
        result.append(
            SubscriberCheck(
                subscriber=subscriber,
                level=state.level_index(state.nodes[subscriber].level),
                providers=tuple(sorted(providers[subscriber])),
                tables=chosen,
                elsewhere=moved_from(state, subscriber),
            )
        )
    return sorted(result, key=lambda c: (c.level, c.subscriber))
