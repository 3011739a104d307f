"""Row filters this machine already normalised on a node, so a plan need not normalise them again.

Normalising a filter (probe.sql: a temporary copy of the table with the
filter as a CHECK constraint, rolled back) is most of the work a node does
for a plan. For a self-contained filter (row_filter.is_self_contained: every
filter the loader accepts, since it holds only columns, constants, built-in
operators and pg_catalog functions written schema-qualified, no cast, no
other function or operator) the answer depends only on the filter text, the
database (server system identifier, version, database name), how the
session resolves names (role, search_path) and the table's columns (names
and types in order). So such an answer is remembered per connection string,
table and filter, together with that signature:

- a plan sends the probe only for filters it has no answer for;
- the one round trip also reads the signature's parts, and the remembered
  answer is used only when the signature still matches;
- when it does not (a column added or retyped, the server upgraded or
  replaced, another search_path), the node gets a second round trip that
  normalises again, and `--stats` shows the 2.

Only answers are stored, never errors: a filter that fails to normalise is
probed, and reported, on every plan; so is every filter that is not
self-contained. The file is JSON in the user's cache directory:
$RECONCILE_CACHE_DIR, else $XDG_CACHE_HOME/reconcile, else
~/.cache/reconcile; RECONCILE_CACHE_DIR set to an empty string turns it
off. It holds connection parameters without any password, table names and
filter texts. A file that cannot be read is ignored; one that cannot be
written is left as it was: the cache only ever saves work.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import dsn as dsnlib
from reconciler.files import atomic_write
from reconciler.inspect.facts import TableFacts

# 2: keys are filter texts as row_filter.filter_sql writes them, and an
# answer means the probe also compiled the filter's regular expressions.
# 3: an answer also means the probe ran the filter over an empty copy and
# checked its compared columns' types (probe.sql).
FORMAT = 3
FILE_NAME = "row-filters.json"


def cache_dir() -> Path | None:
    """Where the cache lives, or None when RECONCILE_CACHE_DIR is set empty (off)."""
    explicit = os.environ.get("RECONCILE_CACHE_DIR")
    if explicit is not None:
        return Path(explicit) if explicit else None
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:
            return None  # no home directory (a service user): no cache
    return Path(base) / "reconcile"


# Connection parameters that never go into the cache file (the loader refuses
# passwords in DSNs; this is the second line of defence).
_SECRET_KEYS = {"password", "sslpassword"}


def connection_key(dsn: str) -> str:
    """The connection string's parameters, sorted, without secrets: which database an answer belongs to.

    Not host:port/dbname alone: DSNs like `service=...` name neither, and
    two of them must not share answers. The signature also holds what the
    server says it is, so a key that now reaches another database is caught.
    """
    params = dsnlib.parse(dsn)
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in _SECRET_KEYS)


def signature(server: Mapping[str, Any], table: TableFacts) -> str:
    """What a self-contained filter's normal form depends on besides its text (see the module's docstring)."""
    columns = ",".join(f"{name} {column.type}" for name, column in table.columns.items())
    parts = ("system_identifier", "server_version_num", "database", "role", "search_path")
    return "/".join(str(server[k]) for k in parts) + "/" + columns


@dataclass(frozen=True)
class Answer:
    signature: str
    normal: str


class FilterCache:
    """Answers by database key, table and installed filter text: read once, saved once per run."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, dict[str, Answer]]] = _read(path) if path else {}

    @classmethod
    def default(cls) -> FilterCache:
        directory = cache_dir()
        return cls(directory / FILE_NAME if directory is not None else None)

    def lookup(self, database: str, table: str, installed: str) -> Answer | None:
        return self._known.get(database, {}).get(table, {}).get(installed)

    def save(self, used: Mapping[str, Mapping[str, Mapping[str, Answer]]]) -> None:
        """Write the answers of this run's databases (`used`: every answer they relied on).

        A database read in this run keeps exactly the answers it used, so the
        file stays as large as the declared filters; other databases are
        kept as they were in the file (another run may have written them).
        """
        if self.path is None or not used:
            return
        if all(self._known.get(database, {}) == tables for database, tables in used.items()):
            return  # nothing new: the usual plan writes nothing
        with self._lock:
            merged = _read(self.path)
            for database, tables in used.items():
                merged[database] = {table: dict(filters) for table, filters in tables.items()}
            document = {
                "format": FORMAT,
                "databases": {
                    database: {
                        table: {
                            installed: {"signature": a.signature, "normal": a.normal}
                            for installed, a in sorted(filters.items())
                        }
                        for table, filters in sorted(tables.items())
                    }
                    for database, tables in sorted(merged.items())
                },
            }
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(self.path, json.dumps(document, indent=1, sort_keys=True))
            except OSError:
                return  # a cache that cannot be written only costs the next plan a probe


def _read(path: Path) -> dict[str, dict[str, dict[str, Answer]]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            return {}
        return {
            str(database): {
                str(table): {
                    str(installed): Answer(signature=str(a["signature"]), normal=str(a["normal"]))
                    for installed, a in filters.items()
                }
                for table, filters in tables.items()
            }
            for database, tables in document["databases"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # missing or damaged: start again
