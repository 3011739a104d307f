"""Typed live state of one database: its catalog plus the slot, sync and row facts the diff needs."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from reconciler.model import Frozen, NodeCatalog


class SlotStatus(StrEnum):
    """pg_replication_slots.wal_status; LOST: past max_slot_wal_keep_size, only re-creation helps."""

    RESERVED = "reserved"
    EXTENDED = "extended"
    UNRESERVED = "unreserved"
    LOST = "lost"
    UNKNOWN = "unknown"  # NULL: the slot has never reserved WAL

    @classmethod
    def of(cls, wal_status: str | None) -> SlotStatus:
        try:
            return cls(wal_status or "unknown")
        except ValueError:
            return cls.UNKNOWN


class SubscriptionFacts(Frozen):
    """What a subscriber knows of one of its subscriptions beyond the catalog."""

    slot: str  # the slot it streams from, on its provider
    synced: bool = True  # its initial sync finished: only then must the provider hold the slot
    # Tables the subscription marks synced (pglogical.local_sync_status): pglogical
    # never copies such a table again when it is added to a set later.
    tables_synced: tuple[str, ...] = ()
    # Its apply worker (pglogical): not running while enabled means `down`.
    # down_seconds: since the worker last failed or started, or at least the
    # age of the server log's tail that names neither (None: running, or the
    # log could not be read). last_error: its last ERROR in that tail.
    worker_running: bool = True
    down_seconds: float | None = None
    last_error: str | None = None


class LiveNode(Frozen):
    """One database as inspected: `==` between two of them means nothing changed that the diff reads."""

    catalog: NodeCatalog = Field(default_factory=NodeCatalog)
    # Live subscriptions of the network's engine, by name.
    subscriptions: dict[str, SubscriptionFacts] = Field(default_factory=dict)
    # Native engine: pglogical subscriptions still held (catalog.legacy_subscriptions), by name.
    legacy: dict[str, SubscriptionFacts] = Field(default_factory=dict)
    # Every slot of this database (as a provider), of the engine's output plugins.
    slots: dict[str, SlotStatus] = Field(default_factory=dict)
    # A declared table holds rows, or was not read (counted as rows: a COPY
    # skipped is mended by verify --repair, a COPY onto rows fails for good).
    holds_rows: bool = False
    # Columns of the declared tables this database has: a provider that sends
    # one its subscriber lacks breaks the link, and restarting it would not help.
    columns: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Schema migrations this database ran (reconcile.schema_migrations): name -> checksum.
    migrations: dict[str, str] = Field(default_factory=dict)
    system_identifier: str = ""  # nodes with the same one share a server and its settings
    max_slot_wal_keep_size: str = "-1"

    def slots_in_use(self) -> set[tuple[str, str]]:
        """(provider node, slot) of every subscription here (of either engine) with a known slot."""
        used: set[tuple[str, str]] = set()
        for subs, facts in (
            (self.catalog.subscriptions, self.subscriptions),
            (self.catalog.legacy_subscriptions, self.legacy),
        ):
            used.update((sub.provider_node, facts[name].slot) for name, sub in subs.items() if name in facts)
        return used
