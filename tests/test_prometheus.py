"""Prometheus output: parses with prometheus_client's own parser, follows naming rules; serve and its cache."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from test_health_judge import healthy, state, with_slot

from reconciler.cli.status import write_textfile
from reconciler.health.judge import judge
from reconciler.health.readings import NodeReading, SlotReading
from reconciler.health.serve import CachedCollector, Reading, ReadingCache
from reconciler.render.prometheus import read_families, render_prometheus

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    result: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            result[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return result


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def degraded_text() -> str:
    s = state()
    readings = with_slot(healthy(s), "d1", lag_seconds=75.5, lag_bytes=600, retained_bytes=700, active=False)
    readings = with_slot(readings, "d2", wal_status="lost", retained_bytes=None, lag_seconds=None)
    orphan = SlotReading(
        slot="pgl_forgotten",
        subscription=None,
        active=False,
        wal_status="reserved",
        safe_wal_size=2048,
        retained_bytes=10,
        lag_bytes=10,
        lag_seconds=0.0,
    )
    readings["nation"] = readings["nation"].model_copy(update={"slots": (orphan,)})
    readings["region"] = NodeReading(node="region", reachable=False, reason="connection refused")
    report = judge(s, readings, {"d1": 2, "d2": 0, "nation": 1})
    return render_prometheus(report, seconds=0.25, timestamp=1_800_000_000.0)


def test_output_parses_and_carries_every_figure() -> None:
    text = degraded_text()
    found = samples(text)
    assert value(found, "reconcile_status_level") == 2
    assert value(found, "reconcile_node_up", node="region", level="region") == 0
    assert value(found, "reconcile_node_up", node="d1", level="district") == 1
    assert value(found, "reconcile_edge_lag_seconds", subscriber="region", provider="d1") == 75.5
    assert value(found, "reconcile_edge_lag_bytes", subscriber="region", provider="d1") == 600
    assert value(found, "reconcile_edge_status", subscriber="region", provider="d1", status="unknown") == 1
    assert (
        value(found, "reconcile_edge_status", subscriber="region", provider="d1", status="replicating") == 0
    )
    assert value(found, "reconcile_edge_up", subscriber="region", provider="d1") == 0
    slot_d2 = {"node": "d2", "slot": "pgl_region_from_d2"}
    assert value(found, "reconcile_slot_wal_status", **slot_d2, wal_status="lost") == 1
    assert value(found, "reconcile_slot_wal_status", **slot_d2, wal_status="reserved") == 0
    assert ("reconcile_slot_retained_wal_bytes", tuple(sorted(slot_d2.items()))) not in found
    orphan = {"node": "nation", "slot": "pgl_forgotten"}
    assert value(found, "reconcile_slot_orphan", **orphan) == 1
    assert value(found, "reconcile_slot_safe_wal_size_bytes", **orphan) == 2048
    assert value(found, "reconcile_slot_active", node="d1", slot="pgl_region_from_d1") == 0
    assert value(found, "reconcile_drift_changes", node="d1") == 2
    assert ("reconcile_drift_changes", (("node", "region"),)) not in found
    assert value(found, "reconcile_threshold_lag_seconds") == 100
    assert value(found, "reconcile_read_timestamp_seconds") == 1_800_000_000.0
    assert value(found, "reconcile_node_last_apply_timestamp_seconds", node="d1") > 1.7e9


def test_names_follow_prometheus_conventions() -> None:
    families = list(text_string_to_metric_families(degraded_text()))
    assert len(families) >= 20
    for family in families:
        assert family.name.startswith("reconcile_"), family.name
        # Snapshots are gauges; an error count that only grows is a counter (_total).
        assert family.type == ("counter" if family.name == "reconcile_edge_apply_errors" else "gauge")
        assert family.documentation
        # Base units only: no milliseconds, kilobytes, minutes.
        for bad in ("_ms", "_milliseconds", "_kb", "_mb", "_minutes", "_percent"):
            assert bad not in family.name
        if "lag" in family.name or "wal" in family.name and "status" not in family.name:
            assert family.name.endswith(("_bytes", "_seconds")), family.name


def test_output_is_deterministic() -> None:
    assert degraded_text() == degraded_text()


def test_textfile_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "reconcile.prom"
    target.write_text("old\n")
    write_textfile(target, degraded_text())
    assert target.read_text() == degraded_text()
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reconcile.prom"]  # no temp file left


def test_cache_reads_once_per_period() -> None:
    calls: list[float] = []

    def read() -> Reading:
        calls.append(time.monotonic())
        return Reading(read_families(True, 0.1, time.time()), time.time(), 0.1)

    cache = ReadingCache(read, cache_seconds=60)
    collector = CachedCollector(cache)
    first = list(collector.collect())
    second = list(collector.collect())
    assert cache.get() is cache.get()  # the status page shows the same reading
    assert len(calls) == 1 and cache.readings == 1
    assert [f.name for f in first] == [f.name for f in second]
    fresh = ReadingCache(read, cache_seconds=0)
    list(CachedCollector(fresh).collect())
    list(CachedCollector(fresh).collect())
    assert fresh.readings == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_state(tmp_path: Path) -> Path:
    closed, other = free_port(), free_port()  # each level on a server of its own (load.py)
    directory = tmp_path / "ds"
    directory.mkdir()
    (directory / "topology.yaml").write_text(
        "version: 1\nlevels: [district, region]\nnodes:\n"
        f'  region: {{level: region, dsn: "host=127.0.0.1 port={other} dbname=r user=postgres"}}\n'
        f'  d1: {{level: district, upstream: region, dsn: "host=127.0.0.1 port={closed} dbname=d1 user=postgres"}}\n'
        "replication_sets:\n  approved:\n    tables:\n      public.technology: {row_filter: approved}\n"
    )
    return directory


def fetch(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body: bytes = response.read()
                return body.decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_serve_answers_metrics_over_http(tmp_path: Path) -> None:
    """`reconcile serve` in a subprocess on a free loopback port; nodes down still give metrics."""
    directory = unreachable_state(tmp_path)
    port = free_port()
    env = {**os.environ, "PGCONNECT_TIMEOUT": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "serve", "-d", str(directory), "--port", str(port),
         "--cache-seconds", "60", "--timeout", "1", "--no-drift"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        first = fetch(url, time.monotonic() + 30)
        found = samples(first)
        assert value(found, "reconcile_node_up", node="d1", level="district") == 0
        assert value(found, "reconcile_read_success") == 1
        assert (
            value(found, "reconcile_edge_status", subscriber="region", provider="d1", status="unknown") == 1
        )
        # Within the cache period the same reading is served again.
        second = samples(fetch(url, time.monotonic() + 10))
        assert value(second, "reconcile_read_timestamp_seconds") == value(
            found, "reconcile_read_timestamp_seconds"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


def test_serve_reports_a_broken_desired_state_as_a_failed_reading(tmp_path: Path) -> None:
    """A directory named *.yaml appears while serving (a git pull): scrapes are answered, read_success 0, reason."""
    directory = unreachable_state(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "serve", "-d", str(directory), "--port", str(port),
         "--cache-seconds", "0", "--timeout", "1", "--no-drift"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        assert value(samples(fetch(url, time.monotonic() + 30)), "reconcile_read_success") == 1
        (directory / "x.yaml").mkdir()
        for _ in range(2):  # cache period 0: each scrape reads the directory again
            found = samples(fetch(url, time.monotonic() + 30))  # urlopen raises on an HTTP 500
            assert value(found, "reconcile_read_success", reason="desired_state") == 0
            assert "reconcile_node_up" not in {name for name, _ in found}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        log = proc.stderr.read().decode()
        proc.stderr.close()
    assert "Traceback" not in log, log
    assert f"{directory}/x.yaml:1:1: not a regular file (a directory)" in log


DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_alert_rules_use_only_metrics_we_export() -> None:
    import re

    from ruamel.yaml import YAML

    rules = YAML(typ="safe").load((DEPLOY / "prometheus" / "reconcile-alerts.yml").read_text())
    exported = {f.name for f in text_string_to_metric_families(degraded_text())}
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    names = {a["alert"] for a in alerts}
    for wanted in ("ReconcileNodeDown", "ReconcileEdgeDown", "ReconcileLagHigh", "ReconcileRetainedWalHigh",
                   "ReconcileSlotLost", "ReconcileOrphanSlot", "ReconcileDrift"):  # fmt: skip
        assert wanted in names
    for alert in alerts:
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["annotations"]["summary"]
        for metric in re.findall(r"\breconcile_[a-z_]+", alert["expr"]):
            assert metric in exported, f"{alert['alert']}: {metric} is not exported"


def test_deploy_commands_are_valid_invocations(tmp_path: Path) -> None:
    """Each ExecStart and cron command parses as written (no usage error) and behaves as its unit expects."""
    import shlex

    from typer.testing import CliRunner

    from reconciler.cli import app

    directory = unreachable_state(tmp_path)
    # As the example desired state: the heartbeat units need `monitoring: heartbeat: true`.
    (directory / "monitoring.yaml").write_text("monitoring: {heartbeat: true}\n")
    commands: list[list[str]] = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        line = next(x for x in unit.read_text().splitlines() if x.startswith("ExecStart="))
        commands.append(shlex.split(line.removeprefix("ExecStart="))[1:])
    cron = (DEPLOY / "cron" / "reconcile").read_text().splitlines()
    for line in cron:
        if line and not line.startswith("#") and "=" not in line.split()[0]:
            command = line.split(None, 6)[6]  # after the 5 time fields and the user
            commands.append(shlex.split(command.split(";")[0].split(">")[0])[1:])
    assert len(commands) == 7
    for args in commands:
        if args[0] == "serve":
            continue  # runs forever; served in test_serve_answers_metrics_over_http
        args = [str(tmp_path / "out.prom") if a.endswith(".prom") else a for a in args]
        result = CliRunner().invoke(app, [*args, "-d", str(directory), "--timeout", "1"])
        assert "Usage:" not in result.output and "No such option" not in result.output, result.output
        assert result.exit_code == 3, (args, result.output)  # every node is down in this state
