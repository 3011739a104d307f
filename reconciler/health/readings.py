"""What the health reader brings back from each node: raw figures, not yet judged."""

from __future__ import annotations

from datetime import datetime

from reconciler.inspect.server_log import WorkerLog
from reconciler.model import Frozen


class ApplySummary(Frozen):
    """The newest apply record a node keeps (reconciler.apply_log), without its action list."""

    applied_at: datetime
    os_user: str
    desired_commit: str | None
    result: str
    actions: int


class SlotReading(Frozen):
    """One pglogical slot on a provider.

    `subscription` names the declared edge that uses the slot; None means no
    declared edge does (an orphan). `retained_bytes` is None once PostgreSQL
    has invalidated the slot (`wal_status = lost`: restart_lsn is gone).
    `lag_seconds` is the age of the oldest transaction of this database that
    the subscriber has not confirmed, 0 when nothing is pending, None when it
    could not be measured (`lag_seconds_error` says why).
    """

    slot: str
    subscription: str | None
    active: bool
    wal_status: str | None
    safe_wal_size: int | None
    retained_bytes: int | None
    lag_bytes: int | None
    lag_seconds: float | None
    oldest_pending_commit: datetime | None = None
    lag_seconds_error: str | None = None


class WorkerReading(Frozen):
    """One subscription as its subscriber runs it: its worker, tables not yet ready, errors, its log."""

    subscription: str
    enabled: bool
    worker_running: bool
    tables_not_ready: tuple[str, ...] = ()  # "public.technology (d)": table and its sync state
    apply_errors: int | None = None  # native: pg_stat_subscription_stats (pglogical counts none)
    sync_errors: int | None = None
    log: WorkerLog | None = None  # None: the log was not read, or says nothing of it


class PendingRows(Frozen):
    """A table this subscriber still owes rows of (reconcile.pending_rows), and its repair's progress."""

    table: str
    since: datetime | None = None  # None: not a finite time
    rows_to_copy: int | None = None  # None: no repair of it has begun
    rows_copied: int = 0
    bytes_copied: int = 0
    copy_started: datetime | None = None
    updated_at: datetime | None = None

    @property
    def eta_seconds(self) -> float | None:
        """Time left at the rate of the repair so far (None without a rate)."""
        if self.rows_to_copy is None or self.copy_started is None or self.updated_at is None:
            return None
        seconds = (self.updated_at - self.copy_started).total_seconds()
        if self.rows_copied <= 0 or seconds <= 0:
            return None
        return max(0.0, (self.rows_to_copy - self.rows_copied) * seconds / self.rows_copied)


class NodeReading(Frozen):
    """One node as read: reachable or not (with the reason), versions, slots, subscriptions."""

    node: str
    reachable: bool
    reason: str | None = None  # why unreachable or unreadable; never a secret
    server_version: str | None = None
    pglogical_version: str | None = None  # None: extension not installed
    # Heartbeats held here (reconcile.heartbeat): declared node -> age of its newest beat, in s.
    beats: dict[str, float] = {}
    last_apply: ApplySummary | None = None
    subscriptions: dict[str, str] = {}  # subscription name -> show_subscription_status() status
    slots: tuple[SlotReading, ...] = ()
    seconds: float = 0.0  # time spent reading this node
    workers: dict[str, WorkerReading] = {}  # subscription name -> how its worker runs
    columns: dict[str, dict[str, str]] = {}  # declared table -> column -> type, as this node has it
    # Why the server log could not be read (None: it was read, or nothing was down).
    log_problem: str | None = None
    read_at: datetime | None = None  # the server's clock when it was read (log times compare with it)
    # The newest schema migration recorded (reconcile.schema_migrations), 0 when none.
    schema_migration: int = 0
    pending_rows: tuple[PendingRows, ...] = ()
