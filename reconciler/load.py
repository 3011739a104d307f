"""Desired-state YAML -> validated model; every problem names file, line and column.

Steps: read every `*.yaml` of the directory (ruamel keeps positions), merge
their top-level keys (a key in two files is an error naming both), validate
the structure with the pydantic model (unknown keys are errors), then check
the rules a model cannot express (tree shape, names, DSNs, filters). Nothing
here touches a server.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler import dsn as dsnlib
from reconciler.config import WHERE, load_operator_config
from reconciler.errors import LoadError, Location, Problem
from reconciler.load_input import FileData, decode_files, parse_yaml, read_directory
from reconciler.model import (
    BUILTIN_SETS,
    NAME_MAX_LEN,
    NAME_PATTERN,
    DesiredState,
    Monitoring,
    NodeDecl,
    SetDecl,
    TableDecl,
    parse_size,
)
from reconciler.row_filter import check_row_filter

Path_ = tuple[str | int, ...]

_NAME = re.compile(NAME_PATTERN)
_IDENT = r"[a-z_][a-z0-9_$]*"
# \Z, not $: "$" also matches before a final newline ("public.t\n").
_TABLE = re.compile(rf"^{_IDENT}\.{_IDENT}\Z")
_COLUMN = re.compile(rf"^{_IDENT}\Z")


@dataclass
class _Source:
    file: str
    data: CommentedMap


class _Locator:
    """Maps a path in the merged document (('nodes', 'a', 'dsn')) to file:line:column."""

    def __init__(self, owners: dict[str, _Source], first_file: str) -> None:
        self.owners = owners
        self.first_file = first_file

    def __call__(self, path: Path_, *, key: bool = False) -> Location:
        """Position of the value at `path` (or of its key with key=True).

        When part of the path does not exist (a missing field), the deepest
        existing parent is named instead.
        """
        if not path or not isinstance(path[0], str) or path[0] not in self.owners:
            return Location(self.first_file, 1, 1)
        source = self.owners[path[0]]
        node: Any = source.data
        line, col = 0, 0
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if isinstance(node, CommentedMap) and part in node:
                line, col = node.lc.key(part) if (key and last) else node.lc.value(part)
                if not last and not isinstance(node[part], CommentedMap | CommentedSeq):
                    line, col = node.lc.key(part)
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line, col = node.lc.item(part)
                node = node[part]
            else:
                break
        return Location(source.file, line + 1, col + 1)


def load_desired_state(directory: Path) -> DesiredState:
    """Read, merge and validate `directory`; raise LoadError listing every problem."""
    return load_desired_texts(read_directory(directory), origin=str(directory))


def load_desired_texts(files: Mapping[str, FileData], origin: str) -> DesiredState:
    """Validate desired-state YAML given as {file name: text or bytes} (e.g. blobs of a git revision).

    Entries a reader left unread (not regular files, over a size limit) are
    reported here, so that the working tree and git revisions obey one rule.
    `origin` names the place in errors about the whole directory.
    """
    texts, problems = decode_files(files, origin)
    if problems:
        raise LoadError(problems)
    sources, problems = _parse(texts, origin)
    if problems:
        raise LoadError(problems)
    merged, owners, problems = _merge(sources)
    locate = _Locator(owners, sources[0].file if sources else origin)
    if problems:
        raise LoadError(problems)
    try:
        state = DesiredState.model_validate(merged)
    except ValidationError as exc:
        raise LoadError(_structure_problems(exc, locate)) from None
    problems = _rule_problems(state, locate)
    if problems:
        raise LoadError(problems)
    return state


# -- reading and merging ---------------------------------------------------------


def _parse(files: Mapping[str, str], origin: str) -> tuple[list[_Source], list[Problem]]:
    if not files:
        return [], [Problem(Location(origin, 1, 1), "no *.yaml files in the desired-state directory")]
    sources: list[_Source] = []
    problems: list[Problem] = []
    for name, text in sorted(files.items()):
        data, found = parse_yaml(name, text)
        if found:
            problems += found
            continue
        if data is None:
            continue  # an empty file contributes nothing
        if not isinstance(data, CommentedMap):
            problems.append(Problem(Location(name, 1, 1), "top level must be a mapping of keys"))
            continue
        sources.append(_Source(name, data))
    return sources, problems


def _merge(sources: list[_Source]) -> tuple[dict[str, Any], dict[str, _Source], list[Problem]]:
    merged: dict[str, Any] = {}
    owners: dict[str, _Source] = {}
    problems: list[Problem] = []
    for source in sources:
        for key in source.data:
            if key in owners:
                first = owners[key]
                line, col = first.data.lc.key(key)
                here_line, here_col = source.data.lc.key(key)
                problems.append(
                    Problem(
                        Location(source.file, here_line + 1, here_col + 1),
                        f"top-level key '{key}' is also defined in {first.file}:{line + 1}:{col + 1}",
                    )
                )
                continue
            owners[str(key)] = source
            merged[str(key)] = source.data[key]
    return merged, owners, problems


# -- structural problems (from pydantic) ----------------------------------------------

_FIELDS: dict[str, type[BaseModel]] = {
    "top": DesiredState,
    "node": NodeDecl,
    "set": SetDecl,
    "table": TableDecl,
    "monitoring": Monitoring,
}


def _context(path: Path_) -> str | None:
    """Which model a path's last key belongs to (for 'did you mean')."""
    if len(path) == 1:
        return "top"
    if path[0] == "nodes" and len(path) == 3:
        return "node"
    if path[0] == "replication_sets" and len(path) == 3:
        return "set"
    if path[0] == "replication_sets" and len(path) == 5 and path[2] == "tables":
        return "table"
    if path[0] == "monitoring" and len(path) == 2:
        return "monitoring"
    return None


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)


def _structure_problems(exc: ValidationError, locate: _Locator) -> list[Problem]:
    problems = []
    for err in exc.errors():
        path: Path_ = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            key = str(path[-1])
            message = f"{_dotted(path)}: unknown key '{key}'"
            context = _context(path)
            if context is not None:
                known = sorted(_FIELDS[context].model_fields)
                close = difflib.get_close_matches(key, known, n=1)
                message += f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"
            problems.append(Problem(locate(path, key=True), message))
        elif err["type"] == "missing":
            problems.append(Problem(locate(path), f"{_dotted(path)}: required key is missing"))
        else:
            problems.append(Problem(locate(path), f"{_dotted(path)}: {err['msg']}"))
    return problems


# -- rules the model cannot express ---------------------------------------------------


def _rule_problems(state: DesiredState, locate: _Locator) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: Path_, message: str, *, key: bool = False) -> None:
        problems.append(Problem(locate(path, key=key), message))

    _check_levels(state, add)
    _check_names(state, add)
    _check_tree(state, add)
    _check_dsns(state, add)
    _check_sets(state, add)
    return problems


def _check_levels(state: DesiredState, add: Any) -> None:
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


def _check_names(state: DesiredState, add: Any) -> None:
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


def _check_tree(state: DesiredState, add: Any) -> None:
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
            close = difflib.get_close_matches(node.upstream, names, n=1) if hints <= MAX_HINTS else []
            hint = f" (did you mean '{close[0]}'?)" if close else ""
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


def _check_cycles(state: DesiredState, add: Any) -> None:
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


def _check_dsns(state: DesiredState, add: Any) -> None:
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
    name: str, field: str, value: str, admin: bool, allowed: frozenset[str], add: Any
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
    add: Any,
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
    state: DesiredState, add: Any, servers: dict[dsnlib.ServerAddress, list[str]]
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


def _check_sets(state: DesiredState, add: Any) -> None:
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
