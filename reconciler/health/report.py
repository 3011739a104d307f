"""The judged health of a network: levels and findings per node, edge and slot."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from reconciler.health.readings import ApplySummary, PendingRows
from reconciler.model import Frozen, Monitoring


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    CRIT = "crit"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Level.OK: 0, Level.WARN: 1, Level.CRIT: 2}


def worst(levels: list[Level]) -> Level:
    """The most severe level; OK for none."""
    return max(levels, key=lambda lv: lv.rank, default=Level.OK)


class Finding(Frozen):
    level: Level
    message: str


class NodeHealth(Frozen):
    node: str
    level_name: str  # the node's declared level (district, region, ...)
    reachable: bool
    reason: str | None
    server_version: str | None
    pglogical_version: str | None
    last_apply: ApplySummary | None
    drift: int | None  # planned changes on this node; None when not computed or not planned
    level: Level
    findings: tuple[Finding, ...]
    # Newest schema migration recorded here (reconcile.schema_migrations), 0 none; None: not read.
    schema_migration: int | None = None
    # Tables this node still owes rows of (reconcile.pending_rows), with their repair's progress.
    pending_rows: tuple[PendingRows, ...] = ()


class EdgeHealth(Frozen):
    """A declared edge: `subscriber` pulls from `provider` through `slot`."""

    subscriber: str
    provider: str
    subscription: str
    # replicating | initializing | down | disabled (pglogical's words), missing
    # (the subscriber has no such subscription), unknown (subscriber unreachable)
    status: str
    slot: str | None
    slot_active: bool | None
    lag_bytes: int | None
    lag_seconds: float | None
    level: Level
    findings: tuple[Finding, ...]
    # Why it does not replicate (None: it does) and the remedy (health/causes.py).
    cause: str | None = None
    reason: str | None = None
    remedy: str | None = None
    worker_running: bool | None = None  # None: the subscriber was not read
    down_seconds: float | None = None  # since its worker last failed, from the server log
    retry_at: datetime | None = None  # pglogical's own next retry, at the latest
    apply_errors: int | None = None  # native: pg_stat_subscription_stats; pglogical: failures in the log tail
    last_error: str | None = None
    failed_transaction: str | None = None  # the failing change as the log's CONTEXT names it
    failed_lsn: str | None = None
    stuck_failures: int | None = None  # cause stuck: failures at the same position
    stuck_since: datetime | None = None  # cause stuck: the first of them, when the log says


class SlotHealth(Frozen):
    node: str  # the provider the slot lives on
    slot: str
    subscription: str | None
    orphan: bool
    active: bool
    wal_status: str | None
    safe_wal_size: int | None
    retained_bytes: int | None
    level: Level
    findings: tuple[Finding, ...]


class AppHealth(Frozen):
    """A node's web application (its app_url), as probed: up means a 2xx answer."""

    node: str
    url: str
    up: bool
    http_status: int | None  # None: no HTTP answer came
    seconds: float  # time the probe took
    reason: str | None  # why it is down
    level: Level
    findings: tuple[Finding, ...]


class FreshnessHealth(Frozen):
    """How old the newest heartbeat of leaf `source` is as seen at `observer` (a node above it).

    `seconds` None: the observer was not read, or holds no beat of the source (a finding says which).
    """

    source: str
    observer: str
    seconds: float | None
    level: Level
    findings: tuple[Finding, ...] = ()


class HealthReport(Frozen):
    nodes: tuple[NodeHealth, ...]  # sorted by node
    edges: tuple[EdgeHealth, ...]  # sorted by (subscriber, provider)
    slots: tuple[SlotHealth, ...]  # sorted by (node, slot)
    thresholds: Monitoring
    level: Level  # worst of everything
    apps: tuple[AppHealth, ...] = ()  # sorted by node; only nodes that declare an app_url
    # monitoring: heartbeat only; sorted by (source, observer) (health/freshness.py).
    freshness: tuple[FreshnessHealth, ...] = ()
    # How far the schema migrations reached (health/release.py); None without migrations.
    release: str | None = None
    # The desired state's newest migration, what every node should reach; None without migrations.
    desired_migration: int | None = None
    schema_migrations: dict[str, int] = {}  # reachable node -> newest migration it ran (0: none)

    @property
    def unreachable(self) -> list[str]:
        return [n.node for n in self.nodes if not n.reachable]

    def counts(self) -> dict[Level, int]:
        """How many nodes, edges, slots and applications sit at each level."""
        levels = [x.level for x in self.nodes] + [x.level for x in self.edges] + [x.level for x in self.slots]
        levels += [x.level for x in self.apps] + [x.level for x in self.freshness]
        return {lv: levels.count(lv) for lv in Level}
