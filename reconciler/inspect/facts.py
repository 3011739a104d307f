"""What inspection yields per node: live state, normalised desired catalog, preflight facts."""

from __future__ import annotations

from reconciler.capacity import Capacity
from reconciler.live import LiveNode
from reconciler.model import Frozen, NodeCatalog


class ColumnFacts(Frozen):
    type: str  # format_type(): 'uuid', 'text', 'character varying(20)', ...
    not_null: bool
    has_default: bool = False  # a default, an identity or a generated column


class TableFacts(Frozen):
    """A declared table as this node has it; everything empty when it does not exist."""

    exists: bool
    columns: dict[str, ColumnFacts] = {}  # in column order
    pk_columns: tuple[str, ...] = ()  # in key order
    pk_types: tuple[str, ...] = ()
    replica_identity: str = ""  # pg_class.relreplident: 'd', 'f', 'i', 'n'
    # Data, not catalog: left out of the fingerprint. Read only where a
    # subscription may be created (None: not read, it was not needed).
    has_rows: bool | None = None


class InspectStats(Frozen):
    """How the node was read: the one-round-trip promise made visible.

    `round_trips` counts client waits for the server after the connection is
    up, i.e. pipeline Syncs; connection setup (TCP, TLS, auth) is counted in
    `connections`, not here.
    """

    connections: int
    round_trips: int
    seconds: float


class NodeFacts(Frozen):
    node: str
    # The live catalog with the slot, sync and row facts the diff reads.
    state: LiveNode
    # Desired catalog of this node with every row filter replaced by the text
    # PostgreSQL normalises it to on this node, so `desired == live` means in
    # sync; a filter that cannot be normalised stays raw (see filter_problems).
    desired: NodeCatalog
    server_version: str
    server_version_num: int
    pglogical_version: str | None  # None: extension not installed in this database
    wal_level: str
    shared_preload_libraries: str
    system_identifier: str
    database: str
    # With system_identifier, which database the connection reached: two
    # nodes with the same pair are one database under two names (preflight).
    database_oid: int
    tables: dict[str, TableFacts]  # every declared table, by "schema.table"
    filter_problems: list[str]  # "public.technology: column \"aproved\" does not exist"
    fingerprint: str  # sha256 of the live catalog and facts (not of desired, not of stats)
    stats: InspectStats
    output_plugin_libraries: str | None = None  # None: the server has no such setting
    # The newest apply record's result (ok, failed, interrupted, running); None: never applied.
    last_apply: str | None = None
    # Tables this subscriber still owes rows of (reconcile.pending_rows).
    pending_rows: tuple[str, ...] = ()
    # The server's worker, slot and walsender settings (capacity.py); None: not read.
    capacity: Capacity | None = None

    @property
    def live(self) -> NodeCatalog:
        """The live catalog, in the model's form (so `desired == live` means in sync)."""
        return self.state.catalog


class InspectResult(Frozen):
    facts: dict[str, NodeFacts]
    unreachable: dict[str, str]  # node -> short reason, never a secret
