"""Pure: why an edge does not replicate, and the named remedy for it, from the readings of its two ends.

Each cause is one word of a fixed vocabulary (`Cause`, also a metric label)
with a sentence saying what was seen and a remedy saying what to do, most
often which `reconcile` command does it. The checks run in the order an
operator would: can both ends be read, does the subscription exist and is
it enabled (a lost slot is named before a disabled subscription: enabling
it would not bring the link back), does the provider still hold its slot,
does the provider send a column the subscriber lacks, are tables still
copying, does the worker restart at the same position again and again
("stuck"), and what the worker's last error in the server log says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum

from reconciler.health.readings import NodeReading, SlotReading, WorkerReading
from reconciler.inspect import server_log
from reconciler.model import DesiredState, Engine, Frozen, format_bytes
from reconciler.topology import Edge

# pglogical's manager starts a failed apply worker again when its latch is
# set or its 180 s wait ends (pglogical_manager.c, WaitLatch(..., 180000L));
# only the first retry comes after 5 s (REPLICATION-NOTES "Living networks").
PGLOGICAL_RETRY_SECONDS = 180.0


class Cause(StrEnum):
    SUBSCRIBER_UNREACHABLE = "subscriber_unreachable"
    PROVIDER_UNREACHABLE = "provider_unreachable"
    SUBSCRIPTION_MISSING = "subscription_missing"
    DISABLED = "disabled"
    SLOT_MISSING = "slot_missing"
    SLOT_LOST = "slot_lost"
    SCHEMA_MISMATCH = "schema_mismatch"
    TABLES_NOT_READY = "tables_not_ready"
    CONNECTION_LOST = "connection_lost"
    # The worker failed more than once at the same transaction: it restarts where it failed.
    STUCK = "stuck"
    CONFLICT = "conflict"  # a change that cannot be applied (a constraint at the subscriber)
    APPLY_ERROR = "apply_error"
    WORKER_NOT_RUNNING = "worker_not_running"
    UNKNOWN = "unknown"


_UNKNOWN_COLUMN = re.compile(r"unknown column name (?P<column>\S+)")


class Diagnosis(Frozen):
    """Why one edge does not replicate (cause None: it does) and what to do about it."""

    cause: Cause | None = None
    reason: str | None = None  # what was seen, one sentence
    remedy: str | None = None
    down_seconds: float | None = None  # since its worker last failed (server log), if known
    retry_at: datetime | None = None  # pglogical: when its own retry is due at the latest
    last_error: str | None = None
    failed_transaction: str | None = None  # the CONTEXT of the failing change, as the log has it
    failed_lsn: str | None = None  # end LSN of the failing transaction (what `skip` moves past)
    # stuck: failures at the same position (log: in a row; native: counted), since when (log only)
    stuck_failures: int | None = None
    stuck_since: datetime | None = None


def missing_columns(
    state: DesiredState, edge: Edge, provider: NodeReading, subscriber: NodeReading
) -> dict[str, dict[str, str]]:
    """Per table, the columns (and types) the provider sends on this edge that the subscriber lacks."""
    missing: dict[str, dict[str, str]] = {}
    for set_name in edge.sets:
        declared = state.replication_sets.get(set_name)
        if declared is None:
            continue
        for table, decl in sorted(declared.tables.items()):
            sent = provider.columns.get(table, {})
            here = subscriber.columns.get(table)
            if here is None:
                continue  # the table itself is missing: preflight's finding, not a column's
            for column, typ in sent.items():
                if (decl.columns is None or column in decl.columns) and column not in here:
                    missing.setdefault(table, {})[column] = typ
    return missing


def rollout(
    state: DesiredState, readings: Mapping[str, NodeReading], subscriber: str, table: str, column: str
) -> list[str]:
    """The subscriber and every tier above it that lack the column, top first: the order to add it in."""
    chain: list[str] = []
    node: str | None = subscriber
    while node is not None and node not in chain:
        chain.append(node)
        node = state.nodes[node].upstream if node in state.nodes else None
    lacking = []
    for name in chain:
        reading = readings.get(name)
        columns = reading.columns.get(table) if reading is not None and reading.reachable else None
        if columns is None or column not in columns:
            lacking.append(name)
    return list(reversed(lacking))


def _schema_remedy(
    state: DesiredState, readings: Mapping[str, NodeReading], edge: Edge, missing: dict[str, dict[str, str]]
) -> tuple[str, str]:
    seen: list[str] = []
    fixes: list[str] = []
    for table, columns in sorted(missing.items()):
        for column, typ in columns.items():
            seen.append(f"{table}.{column}")
            order = rollout(state, readings, edge.subscriber, table, column)
            fixes.append(f"add column {column} {typ} to {table} at {', then '.join(order)}")
    reason = f"{edge.provider} sends column(s) {', '.join(seen)} that {edge.subscriber} lacks"
    remedy = (
        "; ".join(fixes)
        + " (top-down: each tier before the one below sends it); then `reconcile apply` restarts the link"
    )
    return reason, remedy


def _restart_remedy(retry_at: datetime | None, grace: float) -> str:
    text = f"restart: `reconcile apply` restarts it once it has been down {grace:g} s"
    if retry_at is not None:
        text += f" (pglogical would wait until {retry_at:%H:%M:%S})"
    return text


def diagnose(
    state: DesiredState,
    edge: Edge,
    readings: Mapping[str, NodeReading],
    slot: SlotReading | None,
    status: str,
) -> Diagnosis:
    """The cause of one edge's trouble, `status` being the subscriber's word for its subscription."""
    subscriber = readings.get(edge.subscriber)
    provider = readings.get(edge.provider)
    grace = state.monitoring.restart_after_seconds
    if subscriber is None or not subscriber.reachable:
        return _found(
            Diagnosis(),
            Cause.SUBSCRIBER_UNREACHABLE,
            f"subscriber {edge.subscriber} does not answer: {subscriber.reason if subscriber else '?'}",
            f"bring {edge.subscriber} back (or correct its DSN); its provider keeps the WAL meanwhile",
        )
    worker = subscriber.workers.get(edge.subscription)
    if status == "missing":
        return _found(
            Diagnosis(),
            Cause.SUBSCRIPTION_MISSING,
            f"{edge.subscriber} has no subscription {edge.subscription}",
            "`reconcile apply` creates it",
        )
    # Before "disabled": enabling a subscription whose slot is lost brings
    # nothing back (the WAL it needs is gone), so the re-copy is the remedy.
    # The slot was read from the provider: it is None when that is unreachable.
    if slot is not None and slot.wal_status == "lost":
        return _found(
            Diagnosis(),
            Cause.SLOT_LOST,
            f"slot {slot.slot} on {edge.provider} is lost (past max_slot_wal_keep_size)",
            "re-copy needed: `reconcile apply --allow-destroy` replaces the subscription,"
            " then `reconcile verify --repair` repairs the rows",
        )
    if status == "disabled":
        return _found(
            Diagnosis(),
            Cause.DISABLED,
            f"subscription {edge.subscription} is disabled",
            "`reconcile apply` enables it (the desired state wants it enabled)",
        )
    if provider is None or not provider.reachable:
        return _found(
            Diagnosis(),
            Cause.PROVIDER_UNREACHABLE,
            f"provider {edge.provider} does not answer: {provider.reason if provider else 'not read'}",
            f"bring {edge.provider} back; then `reconcile apply` restarts the link at once",
        )
    needs_slot = state.engine is Engine.NATIVE or provider.pglogical_version is not None
    if slot is None and needs_slot and status != "initializing":
        return _found(
            Diagnosis(),
            Cause.SLOT_MISSING,
            f"no slot for this edge on {edge.provider}",
            "re-copy needed: `reconcile apply --allow-destroy` replaces the subscription,"
            " then `reconcile verify --repair` repairs the rows",
        )
    log = worker.log if worker is not None else None
    running = worker is not None and worker.worker_running
    down: float | None = None
    retry_at: datetime | None = None
    if log is not None and log.failed_at is not None and not running:
        if subscriber.read_at is not None:
            down = max(0.0, (subscriber.read_at - log.failed_at).total_seconds())
        if state.engine is Engine.PGLOGICAL:
            retry_at = log.failed_at + timedelta(seconds=PGLOGICAL_RETRY_SECONDS)
    # What is known of the worker's failure, whatever the cause.
    base = Diagnosis(
        down_seconds=down,
        retry_at=retry_at,
        last_error=log.error if log is not None else None,
        failed_transaction=log.context if log is not None else None,
        failed_lsn=log.failed_lsn if log is not None else None,
    )

    def found(cause: Cause, reason: str, remedy: str) -> Diagnosis:
        return _found(base, cause, reason, remedy)

    missing = missing_columns(state, edge, provider, subscriber)
    if missing:
        reason, remedy = _schema_remedy(state, readings, edge, missing)
        if log is not None and log.error is not None:
            reason += f"; its worker's last error: {log.error}"
        return found(Cause.SCHEMA_MISMATCH, reason, remedy)
    if worker is not None and worker.tables_not_ready and (status == "initializing" or running):
        return found(
            Cause.TABLES_NOT_READY,
            "tables not ready: " + ", ".join(worker.tables_not_ready),
            "wait for their initial copy; one that never finishes (an interrupted copy"
            " can stay so) needs the subscription dropped and created again",
        )
    if running:
        return found(
            Cause.UNKNOWN,
            f"its worker runs, status {status}",
            "wait a moment: the worker is starting",
        )
    errors = _errors(worker)
    stuck = _stuck(state, edge, worker, slot, errors)
    if stuck is not None:
        count, reason, remedy = stuck
        since = log.repeating_since if log is not None and log.repeats >= 2 else None
        return _found(
            base.model_copy(update={"stuck_failures": count, "stuck_since": since}),
            Cause.STUCK,
            reason,
            remedy,
        )
    if log is not None and log.error is not None:
        error = log.error
        if server_log.lost_connection(error):
            return found(
                Cause.CONNECTION_LOST,
                f"the connection to {edge.provider} was lost: {error}{errors}",
                _restart_remedy(retry_at, grace),
            )
        if server_log.persists(error):
            where = f" ({log.context})" if log.context else ""
            return found(
                Cause.CONFLICT,
                f"a change cannot be applied at {edge.subscriber}: {error}{where}{errors}",
                f"fix the conflicting row at {edge.subscriber} and `reconcile apply` restarts the link,"
                f" or `reconcile skip {edge.subscriber} {edge.provider}` skips that transaction"
                " and repairs its tables",
            )
        if _UNKNOWN_COLUMN.search(error):
            # The columns match now (checked above): the cause is gone.
            return found(
                Cause.WORKER_NOT_RUNNING,
                f"its worker failed on a column since added: {error}{errors}",
                _restart_remedy(retry_at, grace),
            )
        return found(
            Cause.APPLY_ERROR,
            f"its worker failed: {error}{errors}",
            "remove the cause the error names; then `reconcile apply` restarts the link",
        )
    if subscriber.log_problem is not None:
        return found(
            Cause.UNKNOWN,
            f"unknown: {subscriber.log_problem}{errors}",
            f"read {edge.subscriber}'s server log for the apply worker's error;"
            " `reconcile apply` restarts the link once it has been down"
            f" {grace:g} s",
        )
    return found(
        Cause.WORKER_NOT_RUNNING,
        "its apply worker is not running and the log's tail names no error" + errors,
        _restart_remedy(retry_at, grace),
    )


def _stuck(
    state: DesiredState, edge: Edge, worker: WorkerReading | None, slot: SlotReading | None, errors: str
) -> tuple[int, str, str] | None:
    """(failures, reason, remedy) when the down worker keeps failing at the same position, else None.

    The log shows it directly: the same error at the same transaction's LSN
    more than once in a row. A native subscriber whose log does not name the
    transaction still counts its errors (pg_stat_subscription_stats): two or
    more while the slot's confirmed_flush_lsn is behind the provider's WAL.
    A lost connection (no position of its own) and a column since added (a
    restart cures it) are not stuck, whatever the count.
    """
    if worker is None or worker.worker_running:
        return None
    log = worker.log
    error = log.error if log is not None else None
    if error is not None and (server_log.lost_connection(error) or _UNKNOWN_COLUMN.search(error)):
        return None
    subscriber, provider = edge.subscriber, edge.provider
    if log is not None and error is not None and log.failed_lsn is not None:
        if log.repeats < 2:
            return None  # the log names the position, and it failed there once
        xid = f"xid {log.failed_xid}, " if log.failed_xid is not None else ""
        since = f" since {log.repeating_since:%H:%M:%S}" if log.repeating_since is not None else ""
        where = f" ({log.context})" if log.context else ""
        reason = (
            f"stuck: its worker failed {log.repeats} times in a row{since} on the same transaction"
            f" ({xid}finishing at {log.failed_lsn}): {error}{where}{errors}"
        )
        if server_log.persists(error):
            remedy = (
                f"fix the conflicting row at {subscriber} and `reconcile apply` restarts the link,"
                f" or `reconcile skip {subscriber} {provider}` skips that transaction"
                f" ({log.failed_lsn}) and repairs its tables"
            )
        else:
            remedy = (
                f"remove the cause the error names ({error}): every restart fails on it again;"
                " then `reconcile apply` restarts the link"
            )
        return log.repeats, reason, remedy
    counted = worker.apply_errors or 0
    behind = slot.lag_bytes if slot is not None else None
    if state.engine is not Engine.NATIVE or counted < 2 or slot is None or not behind:
        return None
    last = f"; last error: {error}" if error is not None else ""
    reason = (
        f"stuck: {counted} apply errors counted while slot {slot.slot} on {provider} has"
        f" {format_bytes(behind)} not confirmed{last}"
    )
    if error is not None and server_log.persists(error):
        remedy = (
            f"fix the conflicting row at {subscriber} and `reconcile apply` restarts the link,"
            f" or `reconcile skip {subscriber} {provider} --lsn LSN` skips that transaction"
            " (LSN: the 'finished at' of the error's CONTEXT in the server log)"
        )
    elif error is not None:
        remedy = f"remove the cause the error names ({error}); then `reconcile apply` restarts the link"
    else:
        remedy = (
            f"read {subscriber}'s server log for the apply worker's error: a conflict or constraint is"
            f" skipped with `reconcile skip {subscriber} {provider} --lsn LSN` (its CONTEXT's"
            " 'finished at'), any other error is fixed where it points; then `reconcile apply`"
            " restarts the link"
        )
    return counted, reason, remedy


def _found(base: Diagnosis, cause: Cause, reason: str, remedy: str) -> Diagnosis:
    return base.model_copy(update={"cause": cause, "reason": reason, "remedy": remedy})


def _errors(worker: WorkerReading | None) -> str:
    """The native error counts, as a clause: '' when none are counted."""
    if worker is None or (not worker.apply_errors and not worker.sync_errors):
        return ""
    return f" ({worker.apply_errors or 0} apply error(s), {worker.sync_errors or 0} sync error(s) counted)"
