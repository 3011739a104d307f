"""A HealthReport as Prometheus metrics: `reconcile_` prefix, base units, one family per figure.

Labels: `node` (and `level`) for nodes; `subscriber`, `provider` for edges;
`node` (the provider) and `slot` for slots. States (edge status, slot
wal_status) are one series per possible value, 1 for the current one, so an
alert reads `reconcile_slot_wal_status{wal_status="lost"} == 1`. The
thresholds of the desired state are exported too, so alert rules compare
against the same numbers `reconcile status` judges with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from reconciler.health.causes import Cause
from reconciler.health.report import HealthReport, Level

EDGE_STATUSES = ("replicating", "initializing", "down", "disabled", "missing", "unknown")
WAL_STATUSES = ("reserved", "extended", "unreserved", "lost")
LEVEL_VALUE = {Level.OK: 0, Level.WARN: 1, Level.CRIT: 2}
LEVEL_HELP = " (0 ok, 1 warn, 2 crit)"


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"reconcile_{name}", doc, labels=list(labels))


def health_families(report: HealthReport) -> list[Metric]:
    """Every metric of one status reading, in a fixed order (deterministic output)."""
    t = report.thresholds
    status = _gauge("status_level", "Worst level of the whole network" + LEVEL_HELP)
    status.add_metric([], LEVEL_VALUE[report.level])
    thresholds = [
        (_gauge("threshold_lag_seconds", "CRIT limit for an edge's lag in seconds"), t.max_lag_seconds),
        (_gauge("threshold_lag_bytes", "CRIT limit for an edge's lag in bytes"), float(t.max_lag_bytes)),
        (
            _gauge("threshold_retained_wal_bytes", "CRIT limit for the WAL one slot retains"),
            float(t.max_retained_wal),
        ),
        (_gauge("threshold_warn_ratio", "WARN at this fraction of each CRIT limit"), t.warn_fraction),
        (
            _gauge("threshold_freshness_seconds", "CRIT limit for a leaf's heartbeat age at a node above it"),
            t.max_freshness_seconds,
        ),
    ]
    for family, value in thresholds:
        family.add_metric([], value)

    node_up = _gauge("node_up", "1 when the node answered and its catalogs could be read", ["node", "level"])
    node_health = _gauge("node_health_level", "Judged health of the node" + LEVEL_HELP, ["node"])
    node_info = _gauge(
        "node_info", "Versions of a reachable node", ["node", "server_version", "pglogical_version"]
    )
    applied = _gauge(
        "node_last_apply_timestamp_seconds", "Unix time of the newest apply record on the node", ["node"]
    )
    applied_ok = _gauge("node_last_apply_success", "1 when the newest apply record says ok", ["node"])
    drift = _gauge("drift_changes", "Changes `reconcile plan` would make on the node (0 = in sync)", ["node"])
    migration = _gauge(
        "node_schema_migration", "Newest schema migration a reachable node ran (0: none)", ["node"]
    )
    for node, level in sorted(report.schema_migrations.items()):
        migration.add_metric([node], float(level))
    # What every node should reach: the alert compares each node's level with it.
    # No sample without migrations, so nothing can be behind.
    desired_migration = _gauge("desired_schema_migration", "Newest schema migration of the desired state")
    if report.desired_migration is not None:
        desired_migration.add_metric([], float(report.desired_migration))
    for n in report.nodes:
        node_up.add_metric([n.node, n.level_name], 1.0 if n.reachable else 0.0)
        node_health.add_metric([n.node], LEVEL_VALUE[n.level])
        if n.reachable:
            server = (n.server_version or "").split(" ")[0]
            node_info.add_metric([n.node, server, n.pglogical_version or ""], 1.0)
        if n.last_apply is not None:
            applied.add_metric([n.node], n.last_apply.applied_at.timestamp())
            applied_ok.add_metric([n.node], 1.0 if n.last_apply.result == "ok" else 0.0)
        if n.drift is not None:
            drift.add_metric([n.node], float(n.drift))

    edge_labels = ["subscriber", "provider"]
    edge_up = _gauge("edge_up", "1 when the subscription is replicating", edge_labels)
    edge_status = _gauge("edge_status", "Subscription status, one series per state", [*edge_labels, "status"])
    edge_health = _gauge("edge_health_level", "Judged health of the edge" + LEVEL_HELP, edge_labels)
    lag_bytes = _gauge("edge_lag_bytes", "WAL the subscriber has not confirmed", edge_labels)
    lag_seconds = _gauge(
        "edge_lag_seconds",
        "Age of the oldest change the subscriber has not confirmed (grows while the link is down)",
        edge_labels,
    )
    for e in report.edges:
        labels = [e.subscriber, e.provider]
        edge_up.add_metric(labels, 1.0 if e.status == "replicating" else 0.0)
        edge_states: tuple[str, ...] = (
            EDGE_STATUSES if e.status in EDGE_STATUSES else (*EDGE_STATUSES, e.status)
        )
        for state in edge_states:
            edge_status.add_metric([*labels, state], 1.0 if state == e.status else 0.0)
        edge_health.add_metric(labels, LEVEL_VALUE[e.level])
        if e.lag_bytes is not None:
            lag_bytes.add_metric(labels, float(e.lag_bytes))
        if e.lag_seconds is not None:
            lag_seconds.add_metric(labels, e.lag_seconds)

    slot_labels = ["node", "slot"]
    retained = _gauge("slot_retained_wal_bytes", "WAL this slot keeps on its provider", slot_labels)
    safe = _gauge(
        "slot_safe_wal_size_bytes",
        "WAL that may still be written before the slot is lost (max_slot_wal_keep_size)",
        slot_labels,
    )
    active = _gauge("slot_active", "1 when a walsender is streaming from the slot", slot_labels)
    wal_status = _gauge(
        "slot_wal_status",
        "pg_replication_slots.wal_status, one series per state",
        [*slot_labels, "wal_status"],
    )
    orphan = _gauge("slot_orphan", "1 when no declared edge uses this pglogical slot", slot_labels)
    slot_health = _gauge("slot_health_level", "Judged health of the slot" + LEVEL_HELP, slot_labels)
    for s in report.slots:
        labels = [s.node, s.slot]
        if s.retained_bytes is not None:
            retained.add_metric(labels, float(s.retained_bytes))
        if s.safe_wal_size is not None:
            safe.add_metric(labels, float(s.safe_wal_size))
        active.add_metric(labels, 1.0 if s.active else 0.0)
        slot_states: tuple[str, ...] = (
            WAL_STATUSES if (s.wal_status or "") in WAL_STATUSES else (*WAL_STATUSES, s.wal_status or "")
        )
        for state in slot_states:
            wal_status.add_metric([*labels, state], 1.0 if state == s.wal_status else 0.0)
        orphan.add_metric(labels, 1.0 if s.orphan else 0.0)
        slot_health.add_metric(labels, LEVEL_VALUE[s.level])

    app_up = _gauge("app_up", "1 when the node's app_url answered 2xx within the timeout", ["node"])
    app_seconds = _gauge("app_probe_duration_seconds", "Time the probe of the node's app_url took", ["node"])
    app_status = _gauge(
        "app_http_status", "HTTP status of the app_url's last answer (0: no HTTP answer)", ["node"]
    )
    for a in report.apps:
        app_up.add_metric([a.node], 1.0 if a.up else 0.0)
        app_seconds.add_metric([a.node], a.seconds)
        app_status.add_metric([a.node], float(a.http_status or 0))

    freshness = _gauge(
        "freshness_seconds",
        "Age of leaf `source`'s newest heartbeat as seen at `observer` (monitoring: heartbeat)",
        ["source", "observer"],
    )
    for f in report.freshness:
        # No sample without a beat there: the alert then sees the series vanish.
        if f.seconds is not None:
            freshness.add_metric([f.source, f.observer], f.seconds)

    return [
        status,
        *(family for family, _ in thresholds),
        node_up,
        node_health,
        node_info,
        applied,
        applied_ok,
        drift,
        migration,
        desired_migration,
        edge_up,
        edge_status,
        edge_health,
        lag_bytes,
        lag_seconds,
        *edge_cause_families(report),
        retained,
        safe,
        active,
        wal_status,
        orphan,
        slot_health,
        app_up,
        app_seconds,
        app_status,
        freshness,
    ]


def edge_cause_families(report: HealthReport) -> list[Metric]:
    """Why each edge does not replicate (health/causes.py), for alerts that carry the cause.

    reconcile_edge_cause is one series per cause of the fixed vocabulary plus
    "none", 1 for the current one. apply_errors_total counts native errors
    (pg_stat_subscription_stats); for pglogical, the worker's failures in the
    server log's tail, which falls back when the log rotates (a counter reset).
    """
    labels = ["subscriber", "provider"]
    cause = _gauge(
        "edge_cause",
        "Why the edge does not replicate, one series per cause (none: it does)",
        [*labels, "cause"],
    )
    errors = CounterMetricFamily(
        "reconcile_edge_apply_errors",
        "Errors of the edge's workers (native: since the stats reset; pglogical: in the log tail)",
        labels=labels,
    )
    down = _gauge(
        "edge_down_seconds", "Time since the edge's worker last failed, from the server log", labels
    )
    running = _gauge("edge_worker_running", "1 when the subscription's apply worker runs", labels)
    causes = ("none", *(c.value for c in Cause))
    for e in report.edges:
        values = [e.subscriber, e.provider]
        current = e.cause or "none"
        for name in causes if current in causes else (*causes, current):
            cause.add_metric([*values, name], 1.0 if name == current else 0.0)
        if e.apply_errors is not None:
            errors.add_metric(values, float(e.apply_errors))
        if e.down_seconds is not None:
            down.add_metric(values, e.down_seconds)
        if e.worker_running is not None:
            running.add_metric(values, 1.0 if e.worker_running else 0.0)
    return [cause, errors, down, running]


# Why a reading failed, as the `reason` label of reconcile_read_success 0
# (a fixed vocabulary: the details go to the log, never into label values).
READ_FAILURES = {
    "desired_state": "the desired state does not load (every problem is in the exporter's log)",
    "reading": "the network could not be read",
}


def read_families(
    success: bool, seconds: float, timestamp: float, failure: str | None = None
) -> list[Metric]:
    """How the reading itself went: for alerts on a stale textfile or a failing exporter.

    A failed reading carries `reason`, one of READ_FAILURES.
    """
    ok = _gauge(
        "read_success",
        "1 when the last reading of the network completed; 0 with a reason: "
        + "; ".join(f"{k} = {v}" for k, v in READ_FAILURES.items()),
        ["reason"] if failure is not None else [],
    )
    ok.add_metric([failure] if failure is not None else [], 1.0 if success else 0.0)
    took = _gauge("read_duration_seconds", "Time the last reading of the network took")
    took.add_metric([], seconds)
    when = _gauge("read_timestamp_seconds", "Unix time of the last reading of the network")
    when.add_metric([], timestamp)
    return [ok, took, when]


class StaticCollector(Collector):
    """Hands prometheus_client a fixed list of families."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def render_families(families: list[Metric]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StaticCollector(families))
    return generate_latest(registry).decode("utf-8")


def render_prometheus(report: HealthReport, *, seconds: float, timestamp: float) -> str:
    """The text exposition format (node_exporter's textfile collector reads it as is)."""
    return render_families([*health_families(report), *read_families(True, seconds, timestamp)])
