"""Desired-state YAML -> validated model; every problem names file, line and column.

Steps: read every `*.yaml` of the directory (ruamel keeps positions), merge
their top-level keys (a key in two files is an error naming both), validate
the structure with the pydantic model (unknown keys are errors), then check
the rules a model cannot express (load_rules.py: tree shape, names, DSNs,
filters). Nothing here touches a server.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler.errors import LoadError, Location, Problem
from reconciler.load_input import FileData, decode_files, parse_yaml, read_directory
from reconciler.load_rules import Path_, rule_problems
from reconciler.migrations import parse_migrations, read_migrations
from reconciler.model import (
    DesiredState,
    Monitoring,
    NodeDecl,
    SetDecl,
    TableDecl,
)


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
    """Read, merge and validate `directory` (and its migrations/); raise LoadError listing every problem."""
    return load_desired_texts(
        read_directory(directory), origin=str(directory), migrations=read_migrations(directory)
    )


def load_desired_texts(
    files: Mapping[str, FileData], origin: str, migrations: Mapping[str, FileData] | None = None
) -> DesiredState:
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
    if "migrations" in merged:
        problems.append(
            Problem(
                locate(("migrations",), key=True),
                "migrations are SQL files in the migrations/ directory, not a YAML key",
            )
        )
    parsed, found = parse_migrations(migrations or {})
    problems += found
    if problems:
        raise LoadError(problems)
    merged["migrations"] = parsed
    try:
        state = DesiredState.model_validate(merged)
    except ValidationError as exc:
        raise LoadError(_structure_problems(exc, locate)) from None
    problems = rule_problems(state, locate)
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
