"""Pure: the tail of a server log -> what it says about each subscription's apply and sync workers.

pglogical writes an apply worker's error only to the server log (nothing in
its catalogs keeps it), so the log is the one place that says why a
subscription is `down`. The lines are matched to a subscription by the
worker's pid: pglogical's own lines name the subscription when the worker
starts (`starting apply for subscription NAME`), and the postmaster names
the worker by database and subscription oid when it exits (`background
worker "pglogical apply 16384:2966115277" (PID 4196) exited with exit code
1`), which is unique on the server (names are only unique per database).
Native workers start with `logical replication apply worker for
subscription "NAME" has started` and their errors' CONTEXT names the
replication origin `pg_<subscription oid>`.

This needs `%m` (or `%t`) and `%p` at the start of log_line_prefix (the
default '%m [%p] ' and Debian's '%m [%p] %q%u@%d ' both qualify); lines
written with another prefix are not matched, and the cause then says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reconciler.model import Frozen

# How much of the log's end is read when a subscription is down: the last
# minutes of a busy server, one cheap read of a small one.
LOG_TAIL_BYTES = 256 * 1024

# "2026-12-01 11:22:37.385 UTC [4196] ERROR:  unknown column name extra"
_LINE = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)(?: [A-Za-z0-9+:_/-]+)? "
    r"\[(?P<pid>\d+)\][^A-Z]*?"
    r"(?P<severity>DEBUG\d?|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT|CONTEXT|STATEMENT):  "
    r"(?P<message>.*)$"
)
_PGLOGICAL_START = re.compile(r"^starting apply for subscription (?P<name>\S+)$")
_NATIVE_START = re.compile(
    r'^logical replication (?:apply|table synchronization) worker for subscription "(?P<name>[^"]+)"'
)
_EXITED = re.compile(
    r'^background worker "(?P<worker>[^"]+)" \(PID (?P<pid>\d+)\) exited with exit code (?P<code>\d+)$'
)
_PGLOGICAL_WORKER = re.compile(r"^pglogical (?:apply|sync) (?P<db>\d+):(?P<sub>\d+)")
_NATIVE_ORIGIN = re.compile(r'replication origin "pg_(?P<oid>\d+)"')
# pglogical's CONTEXT of a failing change: "apply INSERT in commit before 0/19ACD28, xid 744 ..."
_COMMIT = re.compile(r"in commit before (?P<lsn>[0-9A-Fa-f]+/[0-9A-Fa-f]+)")
# native: "... in transaction 740, finished at 0/1A2B3C4"
_FINISHED = re.compile(r"finished at (?P<lsn>[0-9A-Fa-f]+/[0-9A-Fa-f]+)")
# The failing transaction's id: pglogical "xid 744", native "in transaction 740".
_XID = re.compile(r"(?:\bxid|in transaction) (?P<xid>\d+)")


@dataclass(frozen=True)
class LogLine:
    at: datetime | None  # None: the log's time zone is not one Python knows
    pid: int
    severity: str
    message: str


class WorkerLog(Frozen):
    """What the log tail says about one subscription's workers (None fields: not in the tail)."""

    error: str | None = None  # the last ERROR a worker of this subscription logged
    context: str | None = None  # its CONTEXT line: the change and transaction it failed on
    failed_lsn: str | None = None  # end LSN of the failing transaction, when the context names it
    failed_xid: int | None = None  # its transaction id at the provider, when the context names it
    failed_at: datetime | None = None  # when a worker of it last exited with an error
    failures: int = 0  # worker exits with an error in the tail
    started_at: datetime | None = None  # the last start of its worker
    # The last error's run: how many errors in a row (the newest included) were
    # the same error at the same transaction's LSN, and when the first was
    # logged. 2 or more: the worker restarts at the same position ("stuck").
    repeats: int = 0
    repeating_since: datetime | None = None


def parse(text: str, timezone: str) -> list[LogLine]:
    """Every line written with a prefix we read; the rest (continuations, other prefixes) is skipped."""
    try:
        zone: ZoneInfo | None = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    found: list[LogLine] = []
    for raw in text.splitlines():
        match = _LINE.match(raw)
        if match is None:
            continue
        at = None
        if zone is not None:
            try:
                at = datetime.fromisoformat(match["at"]).replace(tzinfo=zone)
            except ValueError:
                at = None
        found.append(
            LogLine(at=at, pid=int(match["pid"]), severity=match["severity"], message=match["message"])
        )
    return found


def _pids(lines: list[LogLine], started: re.Pattern[str], name: str) -> set[int]:
    """Pids of the workers whose start line names the subscription."""
    pids: set[int] = set()
    for line in lines:
        match = started.match(line.message) if line.severity == "LOG" else None
        if match is not None and match["name"] == name:
            pids.add(line.pid)
    return pids


def _summary(lines: list[LogLine], pids: set[int], exits: list[LogLine]) -> WorkerLog | None:
    error = context = lsn = None
    xid: int | None = None
    started = None
    repeats = 0
    since: datetime | None = None
    for index, line in enumerate(lines):
        if line.pid not in pids:
            continue
        if line.severity == "ERROR":
            previous: tuple[str | None, str | None] = (error, lsn)
            error, context, lsn, xid = line.message, None, None, None
            # DETAIL, HINT and CONTEXT follow their ERROR from the same pid.
            for following in lines[index + 1 : index + 4]:
                if following.pid != line.pid or following.severity not in ("DETAIL", "HINT", "CONTEXT"):
                    break
                if following.severity == "DETAIL":
                    error += f" ({following.message})"
                elif following.severity == "CONTEXT":
                    context = following.message
                    found = _COMMIT.search(context) or _FINISHED.search(context)
                    lsn = found["lsn"] if found is not None else None
                    named = _XID.search(context)
                    xid = int(named["xid"]) if named is not None else None
            # Without an LSN the log cannot tell one position from the next.
            if lsn is not None and (error, lsn) == previous:
                repeats += 1
            else:
                repeats, since = (1, line.at) if lsn is not None else (0, None)
        elif line.severity == "LOG" and (
            _PGLOGICAL_START.match(line.message) or _NATIVE_START.match(line.message)
        ):
            started = line.at
    failed = [e for e in exits if not e.message.endswith("exit code 0")]
    if error is None and not failed and started is None:
        return None
    return WorkerLog(
        error=error,
        context=context,
        failed_lsn=lsn,
        failed_xid=xid,
        failed_at=failed[-1].at if failed else None,
        failures=len(failed),
        started_at=started,
        repeats=repeats,
        repeating_since=since,
    )


def pglogical_worker(
    lines: list[LogLine], database_oid: int, subscription_id: int, name: str
) -> WorkerLog | None:
    """The log of one pglogical subscription (by its database oid, sub_id and name)."""
    exits: list[LogLine] = []
    others: set[int] = set()  # pids that exited as another subscription's worker
    for line in lines:
        match = _EXITED.match(line.message) if line.severity == "LOG" else None
        if match is None:
            continue
        worker = _PGLOGICAL_WORKER.match(match["worker"])
        if worker is not None and (int(worker["db"]), int(worker["sub"])) == (database_oid, subscription_id):
            exits.append(LogLine(at=line.at, pid=int(match["pid"]), severity="LOG", message=line.message))
        else:
            others.add(int(match["pid"]))
    # A start line names the subscription only, which another database may
    # share: a pid that exited as another worker is not this one's.
    pids = {e.pid for e in exits} | (_pids(lines, _PGLOGICAL_START, name) - others)
    return _summary(lines, pids, exits)


def native_worker(lines: list[LogLine], subscription_oid: int, name: str) -> WorkerLog | None:
    """The log of one native subscription (by its oid, through its origin pg_<oid>, and its name)."""
    named = _pids(lines, _NATIVE_START, name)
    # Keep a named pid only if none of its contexts names another origin.
    other = {
        line.pid
        for line in lines
        if line.pid in named
        and (m := _NATIVE_ORIGIN.search(line.message)) is not None
        and int(m["oid"]) != subscription_oid
    }
    pids = named - other
    exits: list[LogLine] = []
    for line in lines:
        match = _EXITED.match(line.message) if line.severity == "LOG" else None
        if match is not None and int(match["pid"]) in pids:
            exits.append(LogLine(at=line.at, pid=int(match["pid"]), severity="LOG", message=line.message))
    return _summary(lines, pids, exits)


# Errors that a restart cures: the connection to the provider went away.
# "data stream ended": pglogical's apply worker when the provider's walsender
# goes away at a shutdown (measured: a provider stopped and started again).
_CONNECTION = re.compile(
    r"could not connect|connection to server|server closed the connection|could not receive data"
    r"|data stream ended"
    r"|terminating connection|could not send data|timeout|no connection to the server"
    r"|the database system is (?:starting up|shutting down|in recovery)",
    re.IGNORECASE,
)
# Errors the same change raises on every retry until a row at the subscriber changes.
_CONFLICT = re.compile(
    r"violates (?:unique|foreign key|check|not-null|exclusion) constraint|duplicate key value",
    re.IGNORECASE,
)


def lost_connection(error: str) -> bool:
    """The worker failed because its connection to the provider was lost or refused."""
    return _CONNECTION.search(error) is not None


def persists(error: str) -> bool:
    """The worker failed on a change that fails again on every retry (a constraint at the subscriber)."""
    return _CONFLICT.search(error) is not None


def tail_lines(tail: bytes, timezone: str) -> list[LogLine]:
    """The lines of a tail read with pg_read_binary_file (its first line is cut unless it starts the file)."""
    text = bytes(tail).decode("utf-8", errors="replace")
    if len(tail) >= LOG_TAIL_BYTES:
        text = text.partition("\n")[2]
    return parse(text, timezone)
