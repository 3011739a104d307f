"""Pure: readings of every node + the desired state's `monitoring:` thresholds -> OK/WARN/CRIT."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from reconciler.health.app_probe import AppReading
from reconciler.health.causes import Diagnosis, diagnose, missing_columns
from reconciler.health.freshness import judge_freshness
from reconciler.health.readings import NodeReading, PendingRows, SlotReading
from reconciler.health.release import release_line
from reconciler.health.report import (
    AppHealth,
    EdgeHealth,
    Finding,
    HealthReport,
    Level,
    NodeHealth,
    SlotHealth,
    worst,
)
from reconciler.model import DesiredState, Engine, Monitoring, format_bytes
from reconciler.topology import Edge, edges

# pglogical's show_subscription_status() words and how bad each is. Anything
# else (a word a later pglogical adds) is CRIT: rows are not known to flow.
SUBSCRIPTION_LEVELS: dict[str, Level] = {
    "replicating": Level.OK,
    "initializing": Level.WARN,  # initial copy running: data is on its way
    "down": Level.CRIT,
    "disabled": Level.CRIT,  # nothing flows; desired state wants it enabled
    "missing": Level.CRIT,
    "unknown": Level.CRIT,
}

RECOPY = "re-copy needed"


def format_seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def against(
    what: str, value: float | None, limit: float, warn_fraction: float, fmt: Callable[[float], str]
) -> Finding | None:
    """CRIT at or above `limit`, WARN at or above `warn_fraction` of it, else nothing."""
    if value is None:
        return None
    if value >= limit:
        return Finding(level=Level.CRIT, message=f"{what} {fmt(value)} >= limit {fmt(limit)}")
    warn_at = warn_fraction * limit
    if value >= warn_at:
        return Finding(level=Level.WARN, message=f"{what} {fmt(value)} >= warn {fmt(warn_at)}")
    return None


def judge_slot(node: str, slot: SlotReading, limits: Monitoring) -> SlotHealth:
    found: list[Finding] = []
    if slot.wal_status == "lost":
        # PostgreSQL invalidated the slot past max_slot_wal_keep_size: the WAL
        # the subscriber still needs is gone, it can never catch up from here.
        found.append(
            Finding(
                level=Level.CRIT,
                message=f"slot lost: WAL it needed was removed (max_slot_wal_keep_size); {RECOPY}",
            )
        )
    elif slot.wal_status == "unreserved":
        found.append(
            Finding(
                level=Level.CRIT,
                message="slot past max_slot_wal_keep_size: lost at the next checkpoint"
                " unless the subscriber catches up",
            )
        )
    if slot.subscription is None:
        found.append(
            Finding(
                level=Level.WARN,
                message="orphan slot: no declared edge uses it, it retains WAL forever"
                " (plan proposes dropping it)",
            )
        )
    retained = against(
        "retained WAL",
        slot.retained_bytes,
        limits.max_retained_wal,
        limits.warn_fraction,
        format_bytes,
    )
    if retained is not None:
        found.append(retained)
    if slot.safe_wal_size is not None and slot.retained_bytes is not None and slot.wal_status != "lost":
        # safe_wal_size is what may still be written before the slot is lost.
        budget = slot.safe_wal_size + slot.retained_bytes
        if budget > 0 and slot.retained_bytes >= limits.warn_fraction * budget:
            found.append(
                Finding(
                    level=Level.WARN,
                    message=f"{format_bytes(max(slot.safe_wal_size, 0))} left before the slot is lost"
                    " (max_slot_wal_keep_size)",
                )
            )
    return SlotHealth(
        node=node,
        slot=slot.slot,
        subscription=slot.subscription,
        orphan=slot.subscription is None,
        active=slot.active,
        wal_status=slot.wal_status,
        safe_wal_size=slot.safe_wal_size,
        retained_bytes=slot.retained_bytes,
        level=worst([f.level for f in found]),
        findings=tuple(found),
    )


def edge_slot(provider: NodeReading | None, edge: Edge) -> SlotReading | None:
    """The edge's own slot on the provider; a table-sync slot only when the main one is absent."""
    if provider is None:
        return None
    mine = [s for s in provider.slots if s.subscription == edge.subscription]
    return min(mine, key=lambda s: (len(s.slot), s.slot), default=None)


def judge_edge(edge: Edge, readings: Mapping[str, NodeReading], state: DesiredState) -> EdgeHealth:
    limits, engine = state.monitoring, state.engine
    subscriber = readings.get(edge.subscriber)
    provider = readings.get(edge.provider)
    found: list[Finding] = []
    if subscriber is None or not subscriber.reachable:
        status = "unknown"
        found.append(Finding(level=Level.CRIT, message=f"subscriber {edge.subscriber} unreachable"))
    else:
        status = subscriber.subscriptions.get(edge.subscription, "missing")
        level = SUBSCRIPTION_LEVELS.get(status, Level.CRIT)
        if level is not Level.OK:
            found.append(Finding(level=level, message=f"subscription {edge.subscription} is {status}"))
    slot = edge_slot(provider, edge)
    if provider is None or not provider.reachable:
        found.append(Finding(level=Level.CRIT, message=f"provider {edge.provider} unreachable"))
    elif slot is None and (engine is Engine.NATIVE or provider.pglogical_version is not None):
        found.append(Finding(level=Level.CRIT, message=f"no slot for this edge on {edge.provider}"))
    if slot is not None:
        if slot.wal_status == "lost":
            found.append(Finding(level=Level.CRIT, message=f"slot {slot.slot} lost: {RECOPY}"))
        for finding in (
            against("lag", slot.lag_bytes, limits.max_lag_bytes, limits.warn_fraction, format_bytes),
            against("lag", slot.lag_seconds, limits.max_lag_seconds, limits.warn_fraction, format_seconds),
        ):
            if finding is not None:
                found.append(finding)
        if slot.lag_seconds is None and slot.lag_seconds_error is not None:
            found.append(Finding(level=Level.WARN, message=f"lag seconds unknown: {slot.lag_seconds_error}"))
    diagnosis = Diagnosis()
    if status != "replicating":
        diagnosis = diagnose(state, edge, readings, slot, status)
    elif subscriber is not None and provider is not None and provider.reachable:
        # Replicating, but the next change of such a column breaks the link.
        for table, columns in missing_columns(state, edge, provider, subscriber).items():
            found.append(
                Finding(
                    level=Level.WARN,
                    message=f"{edge.provider} has column(s) {', '.join(columns)} of {table} that"
                    f" {edge.subscriber} lacks: the link breaks at the next change of them",
                )
            )
    worker = subscriber.workers.get(edge.subscription) if subscriber is not None else None
    # Native counts its errors; pglogical's are counted from the log's tail.
    errors = worker.apply_errors if worker is not None else None
    if errors is None and worker is not None and worker.log is not None:
        errors = worker.log.failures
    return EdgeHealth(
        subscriber=edge.subscriber,
        provider=edge.provider,
        subscription=edge.subscription,
        status=status,
        slot=slot.slot if slot is not None else None,
        slot_active=slot.active if slot is not None else None,
        lag_bytes=slot.lag_bytes if slot is not None else None,
        lag_seconds=slot.lag_seconds if slot is not None else None,
        level=worst([f.level for f in found]),
        findings=tuple(found),
        cause=diagnosis.cause.value if diagnosis.cause is not None else None,
        reason=diagnosis.reason,
        remedy=diagnosis.remedy,
        worker_running=worker.worker_running if worker is not None else None,
        down_seconds=diagnosis.down_seconds,
        retry_at=diagnosis.retry_at,
        apply_errors=errors,
        last_error=diagnosis.last_error,
        failed_transaction=diagnosis.failed_transaction,
        failed_lsn=diagnosis.failed_lsn,
        stuck_failures=diagnosis.stuck_failures,
        stuck_since=diagnosis.stuck_since,
    )


def owed_message(p: PendingRows) -> str:
    """`owes rows of public.t: repair copying 2,000 of 3,000 rows (412 kB), ETA 12 s`."""
    since = p.since.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if p.since is not None else "an unknown time"
    if p.rows_to_copy is None:
        return f"owes rows of {p.table} since {since}: the next `reconcile apply` repairs them"
    eta = p.eta_seconds
    tail = f", ETA {eta:.0f} s" if eta is not None and p.rows_copied < p.rows_to_copy else ""
    return (
        f"owes rows of {p.table} since {since}: repair copied {p.rows_copied:,} of {p.rows_to_copy:,}"
        f" rows ({p.bytes_copied:,} bytes){tail}; an apply that stopped resumes it"
    )


def judge_node(state: DesiredState, reading: NodeReading, drift: int | None) -> NodeHealth:
    found: list[Finding] = []
    if not reading.reachable:
        found.append(Finding(level=Level.CRIT, message=f"unreachable: {reading.reason or 'no answer'}"))
    elif reading.pglogical_version is None and state.engine is Engine.PGLOGICAL:
        found.append(Finding(level=Level.CRIT, message="pglogical extension not installed"))
    if reading.last_apply is not None and reading.last_apply.result != "ok":
        # failed, interrupted (stopped, or killed: its `running` record holds no lock): until
        # an apply completes on this node (even one with nothing to change) supersedes it.
        found.append(Finding(level=Level.WARN, message=f"last apply {reading.last_apply.result}"))
    found.extend(Finding(level=Level.WARN, message=owed_message(p)) for p in reading.pending_rows)
    return NodeHealth(
        node=reading.node,
        level_name=state.nodes[reading.node].level,
        reachable=reading.reachable,
        reason=reading.reason,
        server_version=reading.server_version,
        pglogical_version=reading.pglogical_version,
        last_apply=reading.last_apply,
        drift=drift,
        level=worst([f.level for f in found]),
        findings=tuple(found),
        schema_migration=reading.schema_migration if reading.reachable else None,
        pending_rows=reading.pending_rows,
    )


def judge_app(reading: AppReading) -> AppHealth:
    """No 2xx answer within the timeout is CRIT: the site's users cannot work, whatever replicates."""
    found: list[Finding] = []
    if not reading.up:
        found.append(Finding(level=Level.CRIT, message=f"application down: {reading.reason or 'no answer'}"))
    return AppHealth(
        node=reading.node,
        url=reading.url,
        up=reading.up,
        http_status=reading.http_status,
        seconds=reading.seconds,
        reason=reading.reason,
        level=worst([f.level for f in found]),
        findings=tuple(found),
    )


def judge(
    state: DesiredState,
    readings: Mapping[str, NodeReading],
    drift: Mapping[str, int] | None = None,
    apps: Mapping[str, AppReading] | None = None,
) -> HealthReport:
    """Every node, declared edge and slot read, judged against `state.monitoring`.

    Nodes missing from `readings` count as unreachable. Drift (planned
    changes per node) is reported, not judged: `plan --detailed-exitcode`
    and the drift metric own that signal. `apps`: the probed app_urls
    (health/app_probe.py), one per node that declares one.
    """
    limits = state.monitoring
    complete = {
        name: readings.get(name) or NodeReading(node=name, reachable=False, reason="not read")
        for name in sorted(state.nodes)
    }
    drift = drift or {}
    nodes = tuple(judge_node(state, complete[name], drift.get(name)) for name in sorted(complete))
    judged_edges = tuple(judge_edge(e, complete, state) for e in edges(state))
    slots = tuple(
        judge_slot(name, slot, limits)
        for name in sorted(complete)
        for slot in sorted(complete[name].slots, key=lambda s: s.slot)
    )
    judged_apps = tuple(judge_app(reading) for _, reading in sorted((apps or {}).items()))
    freshness = judge_freshness(state, complete)
    overall = worst(
        [n.level for n in nodes]
        + [e.level for e in judged_edges]
        + [s.level for s in slots]
        + [a.level for a in judged_apps]
        + [f.level for f in freshness]
    )
    return HealthReport(
        nodes=nodes,
        edges=judged_edges,
        slots=slots,
        thresholds=limits,
        level=overall,
        apps=judged_apps,
        freshness=freshness,
        release=release_line(state, complete),
        desired_migration=state.migrations[-1].id if state.migrations else None,
        schema_migrations={n: r.schema_migration for n, r in complete.items() if r.reachable},
    )
