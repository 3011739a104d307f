"""Frozen models shared by desired state (from YAML) and live state (from catalogs).

Two layers live here:

* The *declaration* (``DesiredState``): what an operator writes in git: levels,
  nodes, replication sets, monitoring thresholds.
* The *per-node catalog* (``NodeCatalog``): what one database holds in
  pglogical's catalogs: its node, its replication sets with their tables, and
  its subscriptions. ``topology.desired_catalogs`` derives one per node from
  the declaration; ``inspect`` reads one per node from the server. Both are
  normalised at the edges so that ``==`` means "in sync".
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

# \Z, not $: "$" also matches before a final newline, so "d1\n" would pass as a name.
NAME_PATTERN = r"^[a-z][a-z0-9_]*\Z"
NAME_MAX_LEN = 40

# pglogical creates these in every node; they are its own, never drift.
BUILTIN_SETS = frozenset({"default", "default_insert_only", "ddl_sql"})


class Frozen(BaseModel):
    """Base: immutable, strict about unknown keys, compared by value."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Engine(StrEnum):
    """How the network replicates: the pglogical extension or PostgreSQL's own publications."""

    PGLOGICAL = "pglogical"
    NATIVE = "native"


class Operation(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    TRUNCATE = "truncate"


# ASCII: \d would accept other scripts' digits and \s other spaces, which PostgreSQL refuses.
# Possessive (*+, ++): "\s*(\d+)\s*...\s*" backtracks quadratically on a long run of spaces.
_SIZE = re.compile(r"\s*+(\d++)\s*+(B|kB|MB|GB|TB)?\s*+", re.ASCII)
_UNIT = {None: 1, "B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def parse_size(value: object) -> object:
    """PostgreSQL memory units (1024-based: kB, MB, GB, TB) -> bytes; ints pass through."""
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match is None:
            raise ValueError(f"not a size: {value!r} (use e.g. 512MB, 5GB; units B, kB, MB, GB, TB)")
        return int(match.group(1)) * _UNIT[match.group(2)]
    return value


# The JSON Schema (schema/desired-state.schema.json) accepts what parse_size does: bytes or "5GB".
_SIZE_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+\s*(B|kB|MB|GB|TB)?\s*$"},
    ],
    "description": "bytes, or a size in PostgreSQL's units (1024-based): 512MB, 5GB",
}
ByteSize = Annotated[int, BeforeValidator(parse_size), Field(ge=0), WithJsonSchema(_SIZE_SCHEMA)]


def format_bytes(value: float, *, exact: bool = False) -> str:
    """A size for people, 1024-based like PostgreSQL.

    By default rounded as pg_size_pretty prints it: 0 B, 512 B, 8.0 kB, 5.0 GB.
    With `exact`, the largest unit that divides the value, as a setting is
    written and parse_size reads it back: 5GB, 1536kB, 100B.
    """
    if exact:
        whole = int(value)
        for unit in ("TB", "GB", "MB", "kB"):
            factor = _UNIT[unit]
            if whole != 0 and abs(whole) >= factor and whole % factor == 0:
                return f"{whole // factor}{unit}"
        return f"{whole}B"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1024:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def wal_keep_bytes(value: str) -> int:
    """max_slot_wal_keep_size in bytes, -1 meaning no limit (PostgreSQL prints it in its own units)."""
    text = value.strip()
    return -1 if text == "-1" else int(str(parse_size(text)))


DEFAULT_REPLICATE: tuple[Operation, ...] = (Operation.INSERT, Operation.UPDATE, Operation.DELETE)


# --------------------------------------------------------------------------
# Declaration (desired state as written in git)
# --------------------------------------------------------------------------


class TableDecl(Frozen):
    """A table in a replication set, as declared."""

    row_filter: str | None = None
    columns: tuple[str, ...] | None = None


class SetDecl(Frozen):
    """A replication set, as declared. Every node publishes every set."""

    replicate: tuple[Operation, ...] = DEFAULT_REPLICATE
    tables: dict[str, TableDecl]


class NodeDecl(Frozen):
    """One database of the network, as declared."""

    level: str
    upstream: str | None = None
    dsn: str
    admin_dsn: str | None = None
    max_slot_wal_keep_size: str | None = None
    # The site's web application health URL, probed by `status` and `serve`
    # (rules in app_url.py, checked by load_rules).
    app_url: str | None = None

    @property
    def connect_dsn(self) -> str:
        """The DSN the reconciler itself uses: the admin DSN when given."""
        return self.admin_dsn or self.dsn


class LevelSettings(Frozen):
    """Settings declared for every node of one level (a node's own value wins)."""

    max_slot_wal_keep_size: str | None = None


class Monitoring(Frozen):
    """Thresholds used by `status`; WARN at `warn_fraction` of each CRIT limit."""

    max_lag_seconds: float = Field(default=300.0, gt=0)
    max_lag_bytes: ByteSize = 1024**3
    max_retained_wal: ByteSize = 5 * 1024**3
    warn_fraction: float = Field(default=0.5, gt=0, le=1)
    # A subscription down this long, with both ends answering and its cause
    # gone, is planned as a restart (pglogical itself retries only every 180 s).
    restart_after_seconds: float = Field(default=30.0, ge=0, le=86400)
    # End-to-end freshness (opt-in: it adds the tool's table reconcile.heartbeat
    # to every node and every replicated set, so it changes the plan). Each leaf
    # writes its own row with `reconcile heartbeat`; `status` reads, at every
    # tier above it, how old the leaf's newest beat is there. CRIT at
    # max_freshness_seconds: the heartbeat's interval plus the lag it allows.
    heartbeat: bool = False
    max_freshness_seconds: float = Field(default=600.0, gt=0, le=7 * 86400)


class Migration(Frozen):
    """One file of the desired state's migrations/ directory, parsed (reconciler/migrations.py).

    `id` is its number (1 for 0001_add_summary.sql), `name` the file name
    without .sql, `checksum` the sha256 of its bytes: a migration that
    changed after it ran somewhere is a blocking error there.
    """

    id: int
    name: str
    checksum: str
    statements: tuple[str, ...]
    text: str
    # `-- reconcile: leaves-first`: it drops or narrows what providers send,
    # so it runs from the leaves up; the default (additive) runs top-down.
    leaves_first: bool = False
    creates: tuple[str, ...] = ()  # "schema.table" of every CREATE TABLE in it
    # "schema.table" -> its PRIMARY KEY columns, for each CREATE TABLE with one: the
    # native engine plans a new table's replica identity before the table exists.
    keys: dict[str, tuple[str, ...]] = {}


class DesiredState(Frozen):
    """The merged desired-state directory, validated."""

    version: Literal[1]
    engine: Engine = Engine.PGLOGICAL
    levels: tuple[str, ...] = ("district", "region", "nation")
    nodes: dict[str, NodeDecl]
    replication_sets: dict[str, SetDecl]
    monitoring: Monitoring = Field(default_factory=Monitoring)
    level_settings: dict[str, LevelSettings] = Field(default_factory=dict)
    # Not a YAML key: read from the directory's migrations/*.sql (load.py
    # refuses the key in YAML, schema.py leaves it out), in id order.
    migrations: tuple[Migration, ...] = ()

    def level_index(self, level: str) -> int:
        """0 for the leaf level, len(levels)-1 for the top."""
        return self.levels.index(level)

    def max_slot_wal_keep_size(self, node: str) -> str | None:
        """The declared limit for a node's server: its own, else its level's, else None (not managed)."""
        decl = self.nodes[node]
        if decl.max_slot_wal_keep_size is not None:
            return decl.max_slot_wal_keep_size
        level = self.level_settings.get(decl.level)
        return level.max_slot_wal_keep_size if level is not None else None

    def children(self, node: str) -> list[str]:
        """Nodes whose upstream is `node`, sorted by name."""
        return sorted(n for n, d in self.nodes.items() if d.upstream == node)


# --------------------------------------------------------------------------
# Per-node catalog (desired: derived by topology.py; live: read by inspect)
# --------------------------------------------------------------------------


class SetTable(Frozen):
    """A table's membership in one replication set on one node.

    `row_filter` is the filter *as installed* (for pglogical:
    ``(<filter>) IS NOT FALSE``), in PostgreSQL's normalised text once it has
    been through `pg_get_expr` or the probe. `columns` None means all columns.
    """

    row_filter: str | None = None
    columns: tuple[str, ...] | None = None


class ReplicationSet(Frozen):
    name: str
    replicate_insert: bool = True
    replicate_update: bool = True
    replicate_delete: bool = True
    replicate_truncate: bool = False
    tables: dict[str, SetTable] = Field(default_factory=dict)

    def operations(self) -> tuple[str, ...]:
        """The operations the set replicates, in the order insert, update, delete, truncate."""
        flags = (
            ("insert", self.replicate_insert),
            ("update", self.replicate_update),
            ("delete", self.replicate_delete),
            ("truncate", self.replicate_truncate),
        )
        return tuple(name for name, on in flags if on)


class Subscription(Frozen):
    """A subscription held by a subscriber node, to one provider node."""

    name: str
    provider_node: str
    provider_dsn: str
    replication_sets: tuple[str, ...]
    forward_origins: tuple[str, ...]
    enabled: bool = True


class NodeCatalog(Frozen):
    """Everything the desired state owns in one database.

    `node_name`/`dsn` are None when the database has no pglogical node yet.
    Sets exclude pglogical's built-in ones. Keys are names, sorted on output.
    """

    node_name: str | None = None
    dsn: str | None = None
    sets: dict[str, ReplicationSet] = Field(default_factory=dict)
    subscriptions: dict[str, Subscription] = Field(default_factory=dict)
    # Live only: pglogical slots in this database that no declared subscription
    # uses. They keep WAL forever; desired state always has none.
    orphan_slots: tuple[str, ...] = ()
    # Native engine only: the replica identity each filtered table needs
    # ("index(<key + filter columns>)"), as
    # desired, and what the table has ("default", "full", "nothing", "index(...)"),
    # as live. PostgreSQL refuses UPDATE/DELETE on a table whose publication
    # filter reads a column outside the replica identity. Empty for pglogical.
    replica_identities: dict[str, str] = Field(default_factory=dict)
    # Live only, native engine: pglogical subscriptions this database still
    # holds (a network switching engines). Desired state always has none: each
    # is handed over to the native subscription of the same name, then dropped.
    legacy_subscriptions: dict[str, Subscription] = Field(default_factory=dict)
