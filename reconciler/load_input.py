"""Untrusted desired-state input: which files are read, within which limits, and YAML parsed within bounds.

The desired state comes from a merge request, so everything here assumes an
attacker wrote it. Only regular `*.yaml` files are opened (never a FIFO, a
directory, a device or a symbolic link), sizes are checked before reading,
and the YAML event stream is checked before ruamel builds anything from it:
ruamel's composer and constructor recurse once per nesting level, and an
alias is expanded by reference, so that everything walking the result
afterwards (pydantic, the locator, the review's deepdiff) pays for every
repetition. Every problem becomes a `Problem` with file, line and column.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
)
from ruamel.yaml.parser import RoundTripParser
from ruamel.yaml.reader import ReaderError

from reconciler.errors import LoadError, Location, Problem

# Limits, far above any real network (the example is 3 KB; 1,000 nodes are
# about 100 KB) and low enough that a hostile file is refused in seconds:
# ruamel's round-trip loader reads about 100 KB per second.
MAX_FILE_BYTES = 1024 * 1024  # one *.yaml file: 1 MiB
MAX_TOTAL_BYTES = 4 * MAX_FILE_BYTES  # all *.yaml files of the directory together: 4 MiB
MAX_FILES = 100  # *.yaml files in the directory (each top-level key lives in one file: 7 are enough)
MAX_DEPTH = 64  # nested lists and mappings (the deepest real path, a table's column list, is 6)

# Characters a value may not hold. YAML refuses them raw, but a double-quoted
# scalar can spell any of them with an escape ("\0", "\x1b", "\ud800"):
# libpq and pglast stop reading at a NUL, a terminal obeys an escape, and a
# lone surrogate cannot even be encoded to be sent. Tab, CR and LF stay.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class Unreadable:
    """A `*.yaml` entry that is never opened, and why: not a regular file, or no access."""

    reason: str


@dataclass(frozen=True)
class NotRead:
    """A regular `*.yaml` file left unread because a size limit refuses it anyway."""

    size: int


FileData = str | bytes | Unreadable | NotRead


# -- the working tree -------------------------------------------------------------------


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "an unknown kind of file"


def not_regular(what: str) -> Unreadable:
    """The problem for a `*.yaml` entry that is a directory, a FIFO, a link or a submodule."""
    if "symbolic link" in what:
        return Unreadable(
            f"not a regular file ({what}); links are never followed, so that a merge request "
            "cannot make the reconciler read a file elsewhere"
        )
    return Unreadable(f"not a regular file ({what}); only regular *.yaml files are read")


def is_desired_state_file(name: str) -> bool:
    """A name the desired state is read from: `*.yaml`, not hidden.

    Hidden names are left out as a shell's `*.yaml` leaves them out: editors
    keep lock files and backups there (Emacs' `.#topology.yaml` is a link
    to nothing while the file is being edited).
    """
    return name.endswith(".yaml") and not name.startswith(".")


def within_budget(count: int, total: int, size: int) -> bool:
    """Whether a reader should read the next file: False when `judge_limits` refuses it anyway."""
    return count <= MAX_FILES and size <= MAX_FILE_BYTES and total + size <= MAX_TOTAL_BYTES


def read_directory(directory: Path) -> dict[str, FileData]:
    """Every `*.yaml` entry directly in `directory`, read only when it is a regular file within the limits.

    Entries are looked at with lstat and opened with O_NOFOLLOW | O_NONBLOCK,
    so a FIFO never blocks and a link (even one swapped in after the lstat)
    is never followed. At most MAX_FILES + 1 entries are collected: one more
    is enough to say there are too many.
    """
    here = Location(str(directory), 1, 1)
    try:
        with os.scandir(directory) as scan:
            names: list[str] = []
            for entry in scan:
                if is_desired_state_file(entry.name):
                    names.append(entry.name)
                    if len(names) > MAX_FILES:
                        break
    except FileNotFoundError:
        raise LoadError([Problem(here, "desired-state directory does not exist")]) from None
    except NotADirectoryError:
        # A file where the directory is expected (`-d desired-state/topology.yaml`):
        # say so, and what to give instead, rather than that nothing is there.
        message = "a file, not a desired-state directory: give the directory that holds the *.yaml files"
        raise LoadError([Problem(here, message)]) from None
    except OSError as exc:
        raise LoadError([Problem(here, f"desired-state directory cannot be read: {exc.strerror}")]) from None
    files: dict[str, FileData] = {}
    total = 0
    for count, name in enumerate(sorted(names), start=1):
        path = str(directory / name)
        try:
            info = os.lstat(path)
        except OSError as exc:
            files[path] = Unreadable(f"cannot be read: {exc.strerror}")
            continue
        if stat.S_ISLNK(info.st_mode):
            target = "a symbolic link" if os.path.exists(path) else "a symbolic link to nothing"
            files[path] = not_regular(target)
        elif not stat.S_ISREG(info.st_mode):
            files[path] = not_regular(_kind(info.st_mode))
        elif not within_budget(count, total, info.st_size):
            files[path] = NotRead(info.st_size)
        else:
            files[path] = _read_regular(path)
            total += info.st_size
    return files


def _read_regular(path: str) -> bytes | Unreadable | NotRead:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:  # ELOOP: a link swapped in after the lstat
        return Unreadable(f"cannot be read: {exc.strerror}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return not_regular(_kind(info.st_mode))
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:  # the file may grow after the lstat: read one byte past the limit
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return NotRead(size) if size > MAX_FILE_BYTES else b"".join(chunks)
    except OSError as exc:
        return Unreadable(f"cannot be read: {exc.strerror}")
    finally:
        os.close(fd)


# -- limits and text, for the working tree and git alike ------------------------------


def decode_files(files: Mapping[str, FileData], origin: str) -> tuple[dict[str, str], list[Problem]]:
    """The texts of `files`, or the problems: limits, entries not read, text that is not UTF-8."""
    problems: list[Problem] = []
    if len(files) > MAX_FILES:
        message = f"more than {MAX_FILES} *.yaml files; at most {MAX_FILES} are read"
        return {}, [Problem(Location(origin, 1, 1), message)]
    sizes = {name: _size(data) for name, data in files.items()}
    total = sum(size for size in sizes.values() if size is not None)
    if total > MAX_TOTAL_BYTES:
        problems.append(
            Problem(
                Location(origin, 1, 1),
                f"the *.yaml files hold {total} bytes together; at most {MAX_TOTAL_BYTES} (4 MiB) are read",
            )
        )
    texts: dict[str, str] = {}
    for name, data in sorted(files.items()):
        start = Location(name, 1, 1)
        size = sizes[name]
        if isinstance(data, Unreadable):
            problems.append(Problem(start, data.reason))
        elif size is not None and size > MAX_FILE_BYTES:
            message = f"file is {size} bytes; a desired-state file holds at most {MAX_FILE_BYTES} (1 MiB)"
            problems.append(Problem(start, message))
        elif isinstance(data, bytes):
            try:
                texts[name] = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                before = data[: exc.start]
                line = before.count(b"\n") + 1
                column = len(before) - (before.rfind(b"\n") + 1) + 1
                problems.append(Problem(Location(name, line, column), "file is not UTF-8 text"))
        elif isinstance(data, str):
            texts[name] = data
    return texts, problems


def _size(data: FileData) -> int | None:
    if isinstance(data, NotRead):
        return data.size
    if isinstance(data, bytes):
        return len(data)
    if isinstance(data, str):
        return len(data.encode("utf-8", "surrogatepass"))
    return None


# -- YAML within bounds -------------------------------------------------------------------


def parse_yaml(name: str, text: str) -> tuple[Any, list[Problem]]:
    """The round-trip document of one file (ruamel keeps positions), or its problem.

    One pass: each event is checked as ruamel's composer takes it from the
    parser (a loop, not a recursion), so a 100,000-deep nesting is refused at
    depth MAX_DEPTH before the recursive composer goes deeper, and an alias
    is refused before anything expands it.
    """
    yaml = YAML(typ="rt")
    yaml.Parser = _CheckedParser
    try:
        return yaml.load(text), []
    except _Refused as exc:
        return None, [Problem(_mark(name, exc.mark), exc.message)]
    except DuplicateKeyError as exc:
        # Two spellings of one value (1 and 1.0, true and True): the event
        # check compares keys as written. ruamel's own message quotes both values.
        return None, [Problem(_mark(name, exc.problem_mark), "a key is given twice in this mapping")]
    except MarkedYAMLError as exc:
        # Our words around ruamel's problem: its scanner's messages quote at
        # most one character; its duplicate-key message, handled above, whole values.
        where = _mark(name, exc.problem_mark or exc.context_mark)
        return None, [Problem(where, f"YAML syntax error: {exc.problem or exc.context}")]
    except ReaderError as exc:
        before = text[: exc.position]
        where = Location(name, before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1)
        return None, [Problem(where, f"the character U+{exc.character:04X} is not allowed in YAML")]
    except (ValueError, OverflowError):
        # ruamel's constructor converts some plain scalars itself and raises
        # without a position: an impossible date (2024-13-45), an integer of
        # more digits than Python converts.
        return None, [
            Problem(
                Location(name, 1, 1),
                "a value cannot be converted (a date that does not exist, or a number of thousands of "
                "digits); quote it if it is text",
            )
        ]


def _mark(name: str, mark: Any) -> Location:
    return Location(name, mark.line + 1, mark.column + 1) if mark is not None else Location(name, 1, 1)


class _Refused(Exception):
    """Something the desired state does not allow, at a YAML event."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


@dataclass
class _Keys:
    """An open mapping in the event stream: the keys seen (as written) and whether a key comes next."""

    seen: dict[str, int] = field(default_factory=dict)
    expect_key: bool = True


class _CheckedParser(RoundTripParser):
    """ruamel's round-trip parser; every event the composer takes is checked first.

    The composer takes every event through get_event, once, in order. The
    state is a stack of the open collections: nothing here recurses.
    """

    def __init__(self, loader: Any) -> None:
        super().__init__(loader)
        self.open_collections: list[_Keys | None] = []  # None for a sequence
        self.documents = 0

    def get_event(self) -> Any:
        event = super().get_event()
        message = self._refusal(event)
        if message is not None:
            raise _Refused(message, event.start_mark)
        if isinstance(event, CollectionStartEvent):
            self.open_collections.append(_Keys() if isinstance(event, MappingStartEvent) else None)
        elif isinstance(event, CollectionEndEvent) and self.open_collections:
            self.open_collections.pop()
        return event

    def _refusal(self, event: Event) -> str | None:
        if isinstance(event, DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                return "only one YAML document per file (a second '---')"
            if event.version is not None or event.tags:
                return "YAML directives (%YAML, %TAG) are not allowed in the desired state"
            return None
        if isinstance(event, AliasEvent) or (isinstance(event, NodeEvent) and event.anchor is not None):
            # Refused outright rather than counted: the desired state has no use
            # for them (the example has none), and an alias bomb of a few lines
            # expands to billions of values for whatever walks the result.
            return (
                "YAML anchors (&name) and aliases (*name) are not allowed in the desired state: "
                "write each value out"
            )
        if not isinstance(event, ScalarEvent | CollectionStartEvent):
            return None
        if event.tag is not None:
            return "YAML tags (!!type, !name) are not allowed in the desired state"
        if isinstance(event, ScalarEvent):
            bad = _FORBIDDEN.search(event.value)
            if bad is not None:
                return f"a value holds the character U+{ord(bad.group()):04X}, which is not printable text"
        elif len(self.open_collections) >= MAX_DEPTH:
            return f"lists and mappings are nested more than {MAX_DEPTH} deep"
        parent = self.open_collections[-1] if self.open_collections else None
        if parent is None:
            return None
        is_key, parent.expect_key = parent.expect_key, not parent.expect_key
        return _key_refusal(event, parent) if is_key else None


def _key_refusal(event: Event, parent: _Keys) -> str | None:
    if not isinstance(event, ScalarEvent):
        return "a key must be a plain value, not a list or a mapping"
    if event.value == "<<" and event.style is None:
        return "YAML merge keys (<<) are not allowed in the desired state"
    first = parent.seen.get(event.value)
    if first is not None:
        # Named, never with its values: ruamel's own message quotes both (a DSN, a password).
        return f"key '{event.value}' is given twice in this mapping (first on line {first})"
    parent.seen[event.value] = event.start_mark.line + 1
    return None
