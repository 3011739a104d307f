"""Verify (and repair) every selected subscriber, lowest level first, and collect one report."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import psycopg
from psycopg import sql

from reconciler import pending_rows
from reconciler.db import short_reason
from reconciler.model import DesiredState, Engine
from reconciler.verify.compare import Outcome, compare
from reconciler.verify.node import NodeSession, NodeUnreachable, TableSide, passes, read_columns, statement
from reconciler.verify.prune import PruneRefused
from reconciler.verify.repair import RepairResult, repair
from reconciler.verify.targets import SubscriberCheck, TableCheck, subscriber_checks


class Status(StrEnum):
    CONSISTENT = "consistent"
    DIFFERENCES = "differences"
    UNDECIDED = "undecided"
    ERROR = "error"


@dataclass
class TableReport:
    """One subscriber table against all of its providers."""

    subscriber: str
    table: str
    providers: tuple[str, ...]
    status: Status
    found: Outcome | None = None
    reason: str | None = None
    repaired: RepairResult | None = None
    after: Outcome | None = None  # the comparison re-run after a repair

    @property
    def final(self) -> Outcome | None:
        return self.after if self.after is not None else self.found


@dataclass
class VerifyReport:
    tables: list[TableReport] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)
    bytes_read: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    repair: bool = False


@dataclass(frozen=True)
class Options:
    timeout: float = 10.0  # connect timeout per node, seconds
    statement_timeout: float = 600.0
    wait_timeout: float = 30.0  # for replication to confirm a repair before the next level
    # Apply's repair: never delete (a delete replicates upstream), and let each
    # provider's slots catch up first (a row still in flight, written here by
    # the repair, would make the native apply worker fail on its key).
    delete_stale: bool = True
    catch_up_first: bool = False
    # Apply's repair: keep each table's progress in the subscriber's
    # reconcile.pending_rows record, where there is one (pending_rows.py).
    record_progress: bool = False


@dataclass(frozen=True)
class CopyProgress:
    """How far a repair of one subscriber table has come."""

    subscriber: str
    table: str
    rows_to_copy: int
    rows_copied: int
    bytes_copied: int
    seconds: float  # since the repair of this table began

    @property
    def eta_seconds(self) -> float | None:
        """Time left at the rate so far (None before the first batch)."""
        if self.rows_copied <= 0 or self.seconds <= 0:
            return None
        rate = self.rows_copied / self.seconds
        return max(0.0, (self.rows_to_copy - self.rows_copied) / rate)


OnCopy = Callable[[CopyProgress], None]


class _Tracker:
    """One table's repair progress: told to `on_copy`, and kept in its pending_rows record."""

    def __init__(self, session: NodeSession, table: str, record: bool, on_copy: OnCopy | None) -> None:
        self.session, self.table, self.on_copy = session, table, on_copy
        self.record = record and pending_rows.exists(session.conn)
        self.to_copy = self.rows = self.size = 0
        self.began = time.monotonic()

    def started(self, to_copy: int) -> None:
        self.to_copy, self.began = to_copy, time.monotonic()
        if self.record:
            self._keep(lambda: pending_rows.copy_started(self.session.conn, self.table, to_copy))
        self._tell()

    def copied(self, rows: int, size: int) -> None:
        self.rows += rows
        self.size += size
        if self.record:
            self._keep(lambda: pending_rows.copied(self.session.conn, self.table, rows, size))
        self._tell()

    def _keep(self, write: Callable[[], None]) -> None:
        """Progress is bookkeeping: a write of it that fails (a lock, a privilege) stops the
        bookkeeping, never the repair (the session is autocommit: nothing else is undone)."""
        try:
            write()
        except psycopg.Error:
            self.record = False

    def _tell(self) -> None:
        if self.on_copy is not None:
            self.on_copy(
                CopyProgress(
                    self.session.node,
                    self.table,
                    self.to_copy,
                    self.rows,
                    self.size,
                    time.monotonic() - self.began,
                )
            )


POLL_SECONDS = 0.2
# Stale keys asked of each moved-from candidate per statement.
MOVED_BATCH = 500


class CheckError(Exception):
    """The table cannot be compared (missing table, no single uuid key, missing column)."""


class _Sessions:
    """One session per node, opened on first use; unreachable nodes remembered."""

    def __init__(self, state: DesiredState, options: Options, writable: bool) -> None:
        self.state = state
        self.options = options
        self.writable = writable
        self.open: dict[str, NodeSession] = {}
        self.unreachable: dict[str, str] = {}

    def get(self, node: str) -> NodeSession | None:
        if node in self.unreachable:
            return None
        if node not in self.open:
            try:
                self.open[node] = NodeSession(
                    node,
                    self.state.nodes[node].connect_dsn,
                    timeout=self.options.timeout,
                    statement_timeout=self.options.statement_timeout,
                    writable=self.writable,
                )
            except NodeUnreachable as exc:
                self.unreachable[node] = exc.reason
                return None
        return self.open[node]

    def close(self) -> None:
        for session in self.open.values():
            session.close()


def _layout(check: TableCheck, sessions: dict[str, NodeSession]) -> tuple[str, tuple[str, ...]]:
    """(key column, compared columns), the same on every side, or CheckError."""
    columns: dict[str, dict[str, str]] = {}
    keys: dict[str, list[tuple[str, str]]] = {}
    for node, session in sorted(sessions.items()):
        found = read_columns(session, check.table)
        if not found:
            raise CheckError(f"table {check.table} does not exist on {node}")
        columns[node] = {c.name: c.type for c in found}
        keys[node] = [(c.name, c.type) for c in found if c.is_key]
    for node, pk in sorted(keys.items()):
        # Key ranges are UUID prefixes, and rows of different providers must
        # never share a key (pglogical's apply_remote silently overwrites).
        if len(pk) != 1 or pk[0][1] != "uuid":
            raise CheckError(f"{check.table} on {node}: verify needs a primary key of one uuid column")
    names = {pk[0][0] for pk in keys.values()}
    if len(names) != 1:
        raise CheckError(f"{check.table}: the primary key column differs between nodes")
    key = names.pop()
    if check.columns is not None:
        for node, cols in sorted(columns.items()):
            absent = [c for c in check.columns if c not in cols]
            if absent:
                raise CheckError(f"{check.table} on {node}: no column {', '.join(absent)}")
        compared = tuple(check.columns)
    else:
        common = set.intersection(*(set(cols) for cols in columns.values()))
        compared = tuple(sorted(common))
    if key not in compared:
        compared = tuple(sorted((*compared, key)))
    return key, compared


def _moved(outcome: Outcome, elsewhere: Mapping[str, TableSide], batch: int = MOVED_BATCH) -> Outcome:
    """Take out of `stale` the keys a node outside the providers holds (a moved node's history)."""
    if not outcome.stale or not elsewhere:
        return outcome
    moved: dict[str, list[str]] = {}
    for start in range(0, len(outcome.stale), batch):
        chunk = outcome.stale[start : start + batch]
        for node, side in sorted(elsewhere.items()):
            found = side.passing(chunk) - {k for keys in moved.values() for k in keys}
            moved.setdefault(node, []).extend(k for k in chunk if k in found)
    return outcome.with_moved(moved)


def _check_table(
    sub: SubscriberCheck,
    check: TableCheck,
    sessions: _Sessions,
    do_repair: bool,
    delete_stale: bool = True,
    engine: Engine = Engine.PGLOGICAL,
    record_progress: bool = False,
    on_copy: OnCopy | None = None,
) -> TableReport:
    report = TableReport(sub.subscriber, check.table, sub.providers, Status.UNDECIDED)
    subscriber = sessions.get(sub.subscriber)
    providers = {p: sessions.get(p) for p in sub.providers}
    down = sorted(n for n in (sub.subscriber, *sub.providers) if n in sessions.unreachable)
    if subscriber is None or down:
        # The subscriber's rows are not tagged by provider: without every
        # provider's summary no range can be attributed, and stale rows are
        # exactly those no provider passes. Never guess.
        report.reason = f"unreachable: {', '.join(down)}"
        return report
    live = {p: s for p, s in providers.items() if s is not None}
    others = {n: sessions.get(n) for n in sub.elsewhere}
    unsure = sorted(n for n, s in others.items() if s is None)
    try:
        key, columns = _layout(check, {sub.subscriber: subscriber, **live})
        where = passes(check.row_filter)
        mine = TableSide(subscriber, check.table, key, columns, sql.SQL("true"))
        theirs = {p: TableSide(s, check.table, key, columns, where) for p, s in sorted(live.items())}
        # Every row a moved node holds, not only those it passes: a key is one
        # node's (UUIDs), so its rows at the old parent are its history, approved
        # or withdrawn since; the tiers above judge their own copies.
        moved = {
            n: TableSide(s, check.table, key, columns, sql.SQL("true"))
            for n, s in others.items()
            if s is not None
        }
        report.found = _moved(compare(mine, theirs), moved)
        report.status = Status.CONSISTENT if report.found.consistent else Status.DIFFERENCES
        if unsure and report.found.stale:
            # A stale row may be the history of a node that moved under a
            # parent that did not answer: never deleted on a guess.
            delete_stale = False
            report.reason = f"unreachable: {', '.join(unsure)}: stale rows may be a moved node's, kept"
        if do_repair and not report.found.consistent:
            tracker = _Tracker(subscriber, check.table, record_progress, on_copy)
            report.repaired = repair(
                mine,
                theirs,
                report.found,
                delete_stale=delete_stale,
                moved=moved,
                engine=engine,
                started=tracker.started,
                copied=tracker.copied,
            )
            report.after = _moved(compare(mine, theirs), moved)
        if do_repair and _whole(report.final):
            _settle(subscriber, check.table)
    except (CheckError, PruneRefused) as exc:
        report.status, report.reason = Status.ERROR, str(exc)
    except psycopg.DatabaseError as exc:
        report.status = Status.ERROR
        report.reason = short_reason(str(exc), subscriber.dsn)
    return report


def _whole(found: Outcome | None) -> bool:
    return found is not None and not any(found.missing.values()) and not any(found.differing.values())


def _settle(session: NodeSession, table: str) -> None:
    """A table found whole by a repairing verify owes nothing: its pending_rows record goes (best
    effort: one left behind only makes the next apply verify the table again)."""
    with contextlib.suppress(psycopg.Error):
        pending_rows.settled(session.conn, [table])


def _wait_for_subscribers(session: NodeSession, seconds: float) -> bool:
    """Poll until this node's slots confirm its current WAL position; False when `seconds` pass first."""
    target = str(session.execute(statement("wal_position"))[0][0])
    deadline = time.monotonic() + seconds
    while True:
        confirmed = session.execute(statement("wait_slots"), {"target": target})
        if confirmed and confirmed[0][0]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


def run_verify(
    state: DesiredState,
    *,
    tables: Sequence[str] | None = None,
    nodes: Sequence[str] | None = None,
    scope: Mapping[str, Collection[str]] | None = None,
    do_repair: bool = False,
    options: Options | None = None,
    on_copy: OnCopy | None = None,
) -> VerifyReport:
    """Compare (and with `do_repair`, repair) every selected subscriber table.

    Subscribers are taken level by level, lowest first: a repair at a region
    is a local change there and replicates on to the nation, so the nation is
    checked only after the region's slots confirmed it (bounded wait).
    """
    opts = options or Options()
    checks = subscriber_checks(state, tables, nodes, scope)
    sessions = _Sessions(state, opts, writable=do_repair)
    report = VerifyReport(repair=do_repair)
    try:
        levels = sorted({c.level for c in checks})
        for level in levels:
            wrote: list[str] = []
            if opts.catch_up_first:
                for provider in sorted({p for c in checks if c.level == level for p in c.providers}):
                    session = sessions.get(provider)
                    if session is not None and not _wait_for_subscribers(session, opts.wait_timeout):
                        report.notes.append(
                            f"{provider}: its subscribers had not caught up within {opts.wait_timeout:g} s;"
                            " compared anyway"
                        )
            for sub in (c for c in checks if c.level == level):
                for check in sub.tables:
                    table_report = _check_table(
                        sub,
                        check,
                        sessions,
                        do_repair,
                        opts.delete_stale,
                        state.engine,
                        opts.record_progress,
                        on_copy,
                    )
                    report.tables.append(table_report)
                    if table_report.repaired and table_report.repaired.writes and sub.subscriber not in wrote:
                        wrote.append(sub.subscriber)
            if level == levels[-1]:
                continue
            for node in wrote:
                session = sessions.get(node)
                if session is not None and not _wait_for_subscribers(session, opts.wait_timeout):
                    report.notes.append(
                        f"{node}: its subscribers did not confirm the repair within "
                        f"{opts.wait_timeout:g} s; the next level was checked anyway"
                    )
    finally:
        report.unreachable = dict(sorted(sessions.unreachable.items()))
        report.bytes_read = {n: s.bytes_read for n, s in sorted(sessions.open.items())}
        sessions.close()
    return report
