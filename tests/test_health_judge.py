"""The pure health judge: thresholds, WARN/CRIT boundaries, lost and orphan slots, exit-code selection."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.cli.exit_codes import ExitCode, for_status
from reconciler.health.judge import RECOPY, judge
from reconciler.health.readings import ApplySummary, NodeReading, SlotReading
from reconciler.health.report import Level
from reconciler.load import load_desired_texts
from reconciler.model import DesiredState, format_bytes
from reconciler.topology import edges

TOPOLOGY = """
version: 1
levels: [district, region, nation]
nodes:
  nation: {level: nation, dsn: "host=n dbname=nation"}
  region: {level: region, upstream: nation, dsn: "host=r dbname=region"}
  d1: {level: district, upstream: region, dsn: "host=d dbname=d1"}
  d2: {level: district, upstream: region, dsn: "host=d dbname=d2"}
replication_sets:
  approved:
    tables:
      public.technology: {row_filter: approved}
"""

MONITORING = """
monitoring:
  max_lag_seconds: 100
  max_lag_bytes: 1000
  max_retained_wal: 10000
  warn_fraction: 0.5
"""

GIB = 1024**3


@cache
def state(monitoring: str = MONITORING) -> DesiredState:
    return load_desired_texts({"topology.yaml": TOPOLOGY, "monitoring.yaml": monitoring}, "test")


def slot_name(edge_subscription: str) -> str:
    return f"pgl_{edge_subscription}"


def healthy(s: DesiredState) -> dict[str, NodeReading]:
    """Every node reachable, every subscription replicating, every slot idle."""
    subs: dict[str, dict[str, str]] = {n: {} for n in s.nodes}
    slots: dict[str, list[SlotReading]] = {n: [] for n in s.nodes}
    for e in edges(s):
        subs[e.subscriber][e.subscription] = "replicating"
        slots[e.provider].append(
            SlotReading(
                slot=slot_name(e.subscription),
                subscription=e.subscription,
                active=True,
                wal_status="reserved",
                safe_wal_size=None,
                retained_bytes=56,
                lag_bytes=0,
                lag_seconds=0.0,
            )
        )
    applied = ApplySummary(
        applied_at=datetime(2026, 1, 1, tzinfo=UTC),
        os_user="ops",
        desired_commit="abc",
        result="ok",
        actions=3,
    )
    return {
        n: NodeReading(
            node=n,
            reachable=True,
            server_version="15.20",
            pglogical_version="2.4.2",
            last_apply=applied,
            subscriptions=subs[n],
            slots=tuple(slots[n]),
        )
        for n in s.nodes
    }


def with_slot(readings: dict[str, NodeReading], provider: str, **changes: object) -> dict[str, NodeReading]:
    """Change the (only) slot of `provider`."""
    node = readings[provider]
    (slot,) = node.slots
    new = dict(readings)
    new[provider] = node.model_copy(update={"slots": (slot.model_copy(update=changes),)})
    return new


def edge_of(report_edges: tuple, provider: str):  # type: ignore[no-untyped-def, type-arg]
    return next(e for e in report_edges if e.provider == provider)


def test_all_healthy_is_ok_and_exit_0() -> None:
    s = state()
    report = judge(s, healthy(s))
    assert report.level is Level.OK
    assert for_status(report) == ExitCode.OK
    assert [e.status for e in report.edges] == ["replicating"] * 3
    assert all(not n.findings for n in report.nodes)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("lag_seconds", 49.99, Level.OK),
        ("lag_seconds", 50.0, Level.WARN),  # exactly warn_fraction * limit
        ("lag_seconds", 99.99, Level.WARN),
        ("lag_seconds", 100.0, Level.CRIT),  # exactly the limit
        ("lag_bytes", 499, Level.OK),
        ("lag_bytes", 500, Level.WARN),
        ("lag_bytes", 999, Level.WARN),
        ("lag_bytes", 1000, Level.CRIT),
    ],
)
def test_edge_lag_boundaries(field: str, value: float, expected: Level) -> None:
    s = state()
    report = judge(s, with_slot(healthy(s), "d1", **{field: value}))
    edge = edge_of(report.edges, "d1")
    assert edge.level is expected
    assert for_status(report) == (ExitCode.OK if expected is Level.OK else ExitCode.DEGRADED)
    if expected is not Level.OK:
        assert any("lag" in f.message for f in edge.findings)


@pytest.mark.parametrize(
    ("retained", "expected"), [(4999, Level.OK), (5000, Level.WARN), (9999, Level.WARN), (10000, Level.CRIT)]
)
def test_retained_wal_boundaries(retained: int, expected: Level) -> None:
    s = state()
    report = judge(s, with_slot(healthy(s), "d2", retained_bytes=retained))
    (slot,) = [x for x in report.slots if x.node == "d2"]
    assert slot.level is expected
    assert report.level is expected


def test_default_thresholds_apply_without_monitoring_section() -> None:
    s = state(monitoring="")
    assert s.monitoring.max_lag_seconds == 300
    assert s.monitoring.max_retained_wal == 5 * GIB
    report = judge(s, with_slot(healthy(s), "d1", lag_seconds=299.0, retained_bytes=5 * GIB))
    assert edge_of(report.edges, "d1").level is Level.WARN
    assert [x.level for x in report.slots if x.node == "d1"] == [Level.CRIT]


def test_lost_slot_is_crit_and_says_recopy_needed() -> None:
    s = state()
    readings = with_slot(
        healthy(s),
        "d1",
        wal_status="lost",
        retained_bytes=None,
        lag_seconds=None,
        active=False,
        lag_bytes=123,
    )
    report = judge(s, readings)
    (slot,) = [x for x in report.slots if x.node == "d1"]
    assert slot.level is Level.CRIT
    assert any(RECOPY in f.message for f in slot.findings)
    edge = edge_of(report.edges, "d1")
    assert edge.level is Level.CRIT
    assert any(RECOPY in f.message for f in edge.findings)
    assert RECOPY == "re-copy needed"


def test_unreserved_slot_is_crit_and_nearly_exhausted_budget_warns() -> None:
    s = state()
    report = judge(s, with_slot(healthy(s), "d1", wal_status="unreserved"))
    assert [x.level for x in report.slots if x.node == "d1"] == [Level.CRIT]
    # 300 retained, 100 left of max_slot_wal_keep_size: 75 % of the budget used.
    report = judge(
        s, with_slot(healthy(s), "d1", wal_status="extended", retained_bytes=300, safe_wal_size=100)
    )
    (slot,) = [x for x in report.slots if x.node == "d1"]
    assert slot.level is Level.WARN
    assert "left before the slot is lost" in slot.findings[0].message
    report = judge(s, with_slot(healthy(s), "d1", retained_bytes=100, safe_wal_size=300))
    assert [x.level for x in report.slots if x.node == "d1"] == [Level.OK]


def test_orphan_slot_warns() -> None:
    s = state()
    readings = dict(healthy(s))
    orphan = SlotReading(
        slot="pgl_forgotten",
        subscription=None,
        active=False,
        wal_status="reserved",
        safe_wal_size=None,
        retained_bytes=10,
        lag_bytes=10,
        lag_seconds=1.0,
    )
    readings["nation"] = readings["nation"].model_copy(update={"slots": (orphan,)})
    report = judge(s, readings)
    (slot,) = [x for x in report.slots if x.node == "nation"]
    assert slot.orphan and slot.level is Level.WARN
    assert "orphan" in slot.findings[0].message
    assert for_status(report) == ExitCode.DEGRADED


@pytest.mark.parametrize(
    ("status", "expected"),
    [("replicating", Level.OK), ("initializing", Level.WARN), ("down", Level.CRIT), ("disabled", Level.CRIT)],
)
def test_subscription_status_levels(status: str, expected: Level) -> None:
    s = state()
    readings = dict(healthy(s))
    region = readings["region"]
    subs = {name: status if name.endswith("_from_d1") else st for name, st in region.subscriptions.items()}
    readings["region"] = region.model_copy(update={"subscriptions": subs})
    edge = edge_of(judge(s, readings).edges, "d1")
    assert edge.status == status
    assert edge.level is expected


def test_missing_subscription_and_missing_slot_are_crit() -> None:
    s = state()
    readings = dict(healthy(s))
    readings["region"] = readings["region"].model_copy(update={"subscriptions": {}})
    readings["d2"] = readings["d2"].model_copy(update={"slots": ()})
    report = judge(s, readings)
    assert edge_of(report.edges, "d1").status == "missing"
    assert edge_of(report.edges, "d1").level is Level.CRIT
    d2 = edge_of(report.edges, "d2")
    assert any("no slot" in f.message for f in d2.findings)


def test_unreachable_wins_exit_3_and_edges_become_unknown() -> None:
    s = state()
    readings = with_slot(healthy(s), "d1", lag_seconds=1e6)
    readings["region"] = NodeReading(node="region", reachable=False, reason="connection refused")
    report = judge(s, readings)
    assert report.unreachable == ["region"]
    assert for_status(report) == ExitCode.UNREACHABLE
    d1 = edge_of(report.edges, "d1")
    assert d1.status == "unknown"
    assert d1.lag_seconds == 1e6  # still measured on the district
    region_node = next(n for n in report.nodes if n.node == "region")
    assert region_node.level is Level.CRIT
    assert "connection refused" in region_node.findings[0].message
    # The nation's edge from the region: provider side unknown.
    up = edge_of(report.edges, "region")
    assert up.lag_bytes is None and any("unreachable" in f.message for f in up.findings)


def test_node_absent_from_readings_counts_as_unreachable() -> None:
    s = state()
    readings = healthy(s)
    del readings["d2"]
    report = judge(s, readings)
    assert "d2" in report.unreachable
    assert for_status(report) == ExitCode.UNREACHABLE


def test_missing_extension_and_failed_apply() -> None:
    s = state()
    readings = dict(healthy(s))
    failed = readings["d1"].last_apply.model_copy(update={"result": "failed"})  # type: ignore[union-attr]
    readings["d1"] = readings["d1"].model_copy(update={"last_apply": failed})
    readings["d2"] = readings["d2"].model_copy(update={"pglogical_version": None})
    nodes = {n.node: n for n in judge(s, readings).nodes}
    assert nodes["d1"].level is Level.WARN
    assert nodes["d2"].level is Level.CRIT


def test_drift_is_reported_not_judged() -> None:
    s = state()
    report = judge(s, healthy(s), {"d1": 4, "nation": 0})
    nodes = {n.node: n for n in report.nodes}
    assert nodes["d1"].drift == 4 and nodes["nation"].drift == 0 and nodes["d2"].drift is None
    assert for_status(report) == ExitCode.OK


def test_unknown_lag_seconds_warns_with_the_reason() -> None:
    s = state()
    report = judge(s, with_slot(healthy(s), "d1", lag_seconds=None, lag_seconds_error="all slots in use"))
    edge = edge_of(report.edges, "d1")
    assert edge.level is Level.WARN
    assert "all slots in use" in edge.findings[0].message


def test_format_bytes() -> None:
    assert format_bytes(0) == "0 B"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1536) == "1.5 kB"
    assert format_bytes(5 * GIB) == "5.0 GB"


LEVEL_OF_EDGE = st.sampled_from(["replicating", "initializing", "down", "disabled"])


@given(
    lag_seconds=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    more=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    retained=st.integers(min_value=0, max_value=10**6),
    status=LEVEL_OF_EDGE,
    down=st.sets(st.sampled_from(["nation", "region", "d1", "d2"]), max_size=2),
)
def test_exit_code_is_the_worst_and_more_lag_is_never_better(
    lag_seconds: float, more: float, retained: int, status: str, down: set[str]
) -> None:
    s = state()
    readings = with_slot(healthy(s), "d1", lag_seconds=lag_seconds, retained_bytes=retained)
    region = readings["region"]
    readings["region"] = region.model_copy(
        update={"subscriptions": {k: status for k in region.subscriptions}}
    )
    for node in down:
        readings[node] = NodeReading(node=node, reachable=False, reason="down")
    report = judge(s, readings)
    if down:
        assert for_status(report) == ExitCode.UNREACHABLE
    elif report.level is Level.OK:
        assert for_status(report) == ExitCode.OK
    else:
        assert for_status(report) == ExitCode.DEGRADED
    levels = [x.level for x in (*report.nodes, *report.edges, *report.slots)]
    assert report.level is max(levels, key=lambda lv: lv.rank)
    worse = judge(
        s, with_slot(readings, "d1", lag_seconds=lag_seconds + more) if "d1" not in down else readings
    )
    assert edge_of(worse.edges, "d1").level.rank >= edge_of(report.edges, "d1").level.rank
