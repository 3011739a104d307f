"""The rules a desired state must follow that the model cannot express: levels, names, tree, DSNs, sets."""

from __future__ import annotations

import re
from typing import Protocol

from reconciler import dsn as dsnlib
from reconciler.app_url import AppUrlError, parse_app_url
from reconciler.config import WHERE, load_operator_config
from reconciler.errors import Location, Problem
from reconciler.model import BUILTIN_SETS, NAME_MAX_LEN, NAME_PATTERN, DesiredState, parse_size
from reconciler.names import did_you_mean
from reconciler.row_filter import check_row_filter

Path_ = tuple[str | int, ...]

_NAME = re.compile(NAME_PATTERN)
_IDENT = r"[a-z_][a-z0-9_$]*"
# \Z, not $: "$" also matches before a final newline ("public.t\n").
_TABLE = re.compile(rf"^{_IDENT}\.{_IDENT}\Z")
_COLUMN = re.compile(rf"^{_IDENT}\Z")


class Locate(Protocol):
    """Where a path of the merged document is: file, line and column (load._Locator)."""

    def __call__(self, path: Path_, *, key: bool = False) -> Location: ...


class Add(Protocol):
    """Report one broken rule at `path` (at its key with key=True)."""

    def __call__(self, path: Path_, message: str, *, key: bool = False) -> None: ...


def rule_problems(state: DesiredState, locate: Locate) -> list[Problem]:
    """Every rule broken by a structurally valid desired state, each at the place it is written."""
    problems: list[Problem] = []

    def add(path: Path_, message: str, *, key: bool = False) -> None:
        problems.append(Problem(locate(path, key=key), message))

    _check_levels(state, add)
    _check_names(state, add)
    _check_tree(state, add)
    _check_dsns(state, add)
    _check_app_urls(state, add)
    _check_sets(state, add)
    return problems


def _check_app_urls(state: DesiredState, add: Add) -> None:
    for name, node in sorted(state.nodes.items()):
        if node.app_url is None:
            continue
        try:
            parse_app_url(node.app_url)
        except AppUrlError as exc:
            add(("nodes", name, "app_url"), f"node '{name}': app_url {exc}")


def _check_levels(state: DesiredState, add: Add) -> None:
    if len(state.levels) < 2:
        add(("levels",), "levels: at least 2 levels are needed (leaf first, top last)")
    seen: set[str] = set()
    for i, level in enumerate(state.levels):
        if not _NAME.match(level):
            add(("levels", i), f"level '{level}': use lower-case letters, digits and _")
        if level in seen:
            add(("levels", i), f"level '{level}' is listed twice")
        seen.add(level)


def _name_problem(kind: str, name: str) -> str | None:
    if not _NAME.match(name):
        return (
            f"{kind} name '{name}' is invalid: it must start with a lower-case letter and "
            "contain only a-z, 0-9 and _ (it becomes part of slot names)"
        )
    if len(name) > NAME_MAX_LEN:
        return f"{kind} name '{name}' is {len(name)} characters; at most {NAME_MAX_LEN} are allowed"
    return None


def _check_names(state: DesiredState, add: Add) -> None:
    if not state.nodes:
        add(("nodes",), "nodes: at least one node must be declared")
    for name in state.nodes:
        problem = _name_problem("node", name)
        if problem:
            add(("nodes", name), problem, key=True)
    if not state.replication_sets:
        add(("replication_sets",), "replication_sets: at least one set must be declared")
    for name in state.replication_sets:
        problem = _name_problem("replication set", name)
        if problem:
            add(("replication_sets", name), problem, key=True)
        elif name in BUILTIN_SETS:
            add(
                ("replication_sets", name),
                f"replication set name '{name}' is reserved by pglogical",
                key=True,
            )


# A hint compares one name with every node name: a few are enough, and a
# file of thousands of unknown upstreams still loads in seconds.
MAX_HINTS = 20


def _check_tree(state: DesiredState, add: Add) -> None:
    """Strictly upstream: each non-top node has one upstream exactly one level higher."""
    top = len(state.levels) - 1
    # Looked up once per node: a dict, not levels.index(), so that thousands
    # of levels and nodes cost thousands of steps, not millions.
    level_index = {level: i for i, level in reversed(list(enumerate(state.levels)))}
    names = sorted(state.nodes)
    hints = 0
    for name, node in sorted(state.nodes.items()):
        if node.level not in level_index:
            add(
                ("nodes", name, "level"),
                f"node '{name}': level '{node.level}' is not one of levels [{', '.join(state.levels)}]",
            )
            continue
        index = level_index[node.level]
        if node.upstream is None:
            if index != top:
                add(
                    ("nodes", name),
                    f"node '{name}' (level {node.level}) needs an upstream at level "
                    f"{state.levels[index + 1]}",
                    key=True,
                )
            continue
        where = ("nodes", name, "upstream")
        if index == top:
            add(where, f"node '{name}' is at the top level '{node.level}' and cannot have an upstream")
            continue
        if node.upstream == name:
            add(where, f"node '{name}' names itself as its upstream")
            continue
        parent = state.nodes.get(node.upstream)
        if parent is None:
            hints += 1
            hint = did_you_mean(node.upstream, names) if hints <= MAX_HINTS else ""
            add(where, f"node '{name}': upstream '{node.upstream}' does not exist{hint}")
            continue
        if parent.level not in level_index:
            continue  # reported on the parent
        gap = level_index[parent.level] - index
        if gap != 1:
            expected = state.levels[index + 1]
            if gap == 0:
                what = "is on the same level"
            elif gap > 1:
                what = "skips a level"
            else:
                what = "is on a lower level: data only flows upstream"
            add(
                where,
                f"node '{name}' (level {node.level}): upstream '{node.upstream}' "
                f"(level {parent.level}) {what}; the upstream must be at level {expected}",
            )
    _check_cycles(state, add)


def _check_cycles(state: DesiredState, add: Add) -> None:
    """Each upstream cycle once, named from its smallest node.

    Every node is walked once: a walk stops at a node an earlier walk has
    seen, so a chain of thousands of nodes costs thousands of steps.
    """
    seen: set[str] = set()
    for start in sorted(state.nodes):
        chain: dict[str, int] = {}  # node -> position in this walk
        current: str | None = start
        while current is not None and current in state.nodes and current not in seen and current not in chain:
            chain[current] = len(chain)
            current = state.nodes[current].upstream
        seen.update(chain)
        if current is None or current not in chain:
            continue
        cycle = list(chain)[chain[current] :]
        if len(cycle) < 2:
            continue  # a self-reference is reported by the tree check
        first = min(cycle)
        loop = cycle[cycle.index(first) :] + cycle[: cycle.index(first)] + [first]
        add(("nodes", first, "upstream"), f"upstream cycle: {' -> '.join(loop)}")


def _check_dsns(state: DesiredState, add: Add) -> None:
    """Each DSN parses, has no secret, uses only allowed keywords (dsn.py), reaches a database of its own."""
    allowed = load_operator_config().dsn_allow
    parsed: dict[tuple[str, str], dict[str, str]] = {}
    for name, node in sorted(state.nodes.items()):
        for field, value in (("dsn", node.dsn), ("admin_dsn", node.admin_dsn)):
            if value is None:
                continue
            # The DSN the tool itself connects with: admin_dsn, else dsn; decided as
            # Node.connect_dsn decides it, so an empty admin_dsn ("") makes dsn one.
            admin = field == "admin_dsn" or not node.admin_dsn
            params = _dsn_params(name, field, value, admin, allowed, add)
            if params is not None:
                parsed[(name, field)] = params
    databases: dict[tuple[dsnlib.ServerAddress, str], str] = {}
    servers: dict[dsnlib.ServerAddress, list[str]] = {}
    for (name, field), params in sorted(parsed.items()):
        if field != "dsn":
            continue
        where = ("nodes", name, field)
        if "service" not in params and "dbname" not in params:
            add(where, f"node '{name}': dsn names no dbname")
            continue
        if "service" in params:
            continue  # where it leads is in the service file: no offline identity
        key = dsnlib.database_key(params)
        if key in databases:
            add(
                where,
                f"node '{name}': dsn reaches the same database as node '{databases[key]}' "
                f"({key[0]} dbname={key[1]})",
            )
        else:
            databases[key] = name
        servers.setdefault(key[0], []).append(name)
    _check_admin_databases(parsed, databases, add)
    for address, names in sorted(servers.items()):
        levels = {state.nodes[n].level for n in names}
        if len(levels) < 2:
            continue
        first_level = state.nodes[names[0]].level
        for other in names[1:]:
            if state.nodes[other].level != first_level:
                add(
                    ("nodes", other, "dsn"),
                    f"node '{other}' (level {state.nodes[other].level}) is on the same PostgreSQL "
                    f"server {address} as node '{names[0]}' (level {first_level}); nodes of "
                    "different levels need servers of their own (pglogical forwarding crashes a "
                    "server that holds two tiers)",
                )
    _check_wal_keep_size(state, add, servers)


def _dsn_params(
    name: str, field: str, value: str, admin: bool, allowed: frozenset[str], add: Add
) -> dict[str, str] | None:
    """The DSN's keywords when it passes every rule, else None (each problem added).

    Messages name keywords only, never a value: a value (or a token libpq
    complains about) may be part of a password.
    """
    where = ("nodes", name, field)
    try:
        params = dsnlib.parse(value)
    except dsnlib.DsnError:
        add(
            where,
            f"node '{name}': {field} is not a valid connection string: libpq cannot parse it (an unknown "
            "keyword, a missing '=', an unterminated quote); the value is not repeated here, it may hold "
            "a secret",
        )
        return None
    secret = next((k for k in dsnlib.SECRETS if k in params), None)
    if secret is not None:
        add(
            where,
            f"node '{name}': {field} contains a {secret}; secrets never live in git "
            "(use ~/.pgpass, PGPASSFILE or PGPASSWORD where the connection is made)",
        )
        return None
    refused = dsnlib.refusals(params, admin=admin, allowed=allowed)
    for refusal in refused:
        add(
            where,
            f"node '{name}': {field} uses '{refusal.keyword}', which {refusal.reason}: refused. "
            "The desired state cannot enable it; whoever runs the tool can, in the operator "
            f'configuration ({WHERE}): [dsn] allow = ["{refusal.keyword}"]',
        )
    return None if refused else params


def _check_admin_databases(
    parsed: dict[tuple[str, str], dict[str, str]],
    databases: dict[tuple[dsnlib.ServerAddress, str], str],
    add: Add,
) -> None:
    """An admin_dsn reaches its own node's database: not another node's, nor another admin_dsn's."""
    admins: dict[tuple[dsnlib.ServerAddress, str], str] = {}
    for (name, field), params in sorted(parsed.items()):
        if field != "admin_dsn" or "service" in params:
            continue
        key = dsnlib.database_key(params)
        where = ("nodes", name, field)
        other = databases.get(key)
        if other is not None and other != name:
            add(
                where,
                f"node '{name}': admin_dsn reaches the same database as the dsn of node '{other}' "
                f"({key[0]} dbname={key[1]}); the tool would read and change node '{other}' as '{name}'",
            )
        elif key in admins:
            add(
                where,
                f"node '{name}': admin_dsn reaches the same database as the admin_dsn of node "
                f"'{admins[key]}' ({key[0]} dbname={key[1]})",
            )
        else:
            admins[key] = name


def _check_wal_keep_size(
    state: DesiredState, add: Add, servers: dict[dsnlib.ServerAddress, list[str]]
) -> None:
    """Valid sizes, known levels, and one value per server (the setting is server-wide)."""
    for level, settings in sorted(state.level_settings.items()):
        if level not in state.levels:
            add(("level_settings", level), f"level_settings: '{level}' is not one of the levels", key=True)
        value = settings.max_slot_wal_keep_size
        if value is not None and value.strip() != "-1":
            try:
                parse_size(value)
            except ValueError as exc:
                add(("level_settings", level, "max_slot_wal_keep_size"), f"level '{level}': {exc}")
    for name, node in sorted(state.nodes.items()):
        value = node.max_slot_wal_keep_size
        if value is not None and value.strip() != "-1":
            try:
                parse_size(value)
            except ValueError as exc:
                add(("nodes", name, "max_slot_wal_keep_size"), f"node '{name}': {exc}")
    for address, names in sorted(servers.items()):
        values = {n: state.max_slot_wal_keep_size(n) for n in names if n in state.nodes}
        declared = {v for v in values.values() if v is not None}
        if len(declared) > 1:
            listing = ", ".join(f"{n}={v}" for n, v in sorted(values.items()) if v is not None)
            add(
                ("nodes", sorted(values)[-1], "max_slot_wal_keep_size"),
                f"nodes on server {address} declare different max_slot_wal_keep_size ({listing}); "
                "it is one setting per server",
            )


def _check_sets(state: DesiredState, add: Add) -> None:
    for set_name, decl in sorted(state.replication_sets.items()):
        base: Path_ = ("replication_sets", set_name)
        if not decl.tables:
            add(base + ("tables",), f"replication set '{set_name}' has no tables")
        if not decl.replicate:
            add(base + ("replicate",), f"replication set '{set_name}' replicates nothing")
        if len(set(decl.replicate)) != len(decl.replicate):
            add(base + ("replicate",), f"replication set '{set_name}': an operation is listed twice")
        for table, spec in sorted(decl.tables.items()):
            where: Path_ = base + ("tables", table)
            if "." not in table:
                add(where, f"table '{table}' must be schema-qualified, e.g. public.{table}", key=True)
            elif not _TABLE.match(table):
                add(where, f"table '{table}' is not a valid schema.table name (lower case)", key=True)
            if spec.columns is not None:
                if not spec.columns:
                    add(where + ("columns",), f"table '{table}': columns must not be empty")
                for i, column in enumerate(spec.columns):
                    if not _COLUMN.match(column):
                        add(where + ("columns", i), f"table '{table}': '{column}' is not a column name")
                if len(set(spec.columns)) != len(spec.columns):
                    add(where + ("columns",), f"table '{table}': a column is listed twice")
            if spec.row_filter is not None:
                for message in check_row_filter(spec.row_filter):
                    add(where + ("row_filter",), f"table '{table}': {message}")
