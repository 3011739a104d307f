"""`reconcile status` and `graph` against real pglogical servers: healthy, region down, lost and orphan slots."""

from __future__ import annotations

import json
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML
from typer.testing import CliRunner, Result

from reconciler.cli import app
from reconciler.topology import subscription_name

pytestmark = pytest.mark.server

SMALL = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}
SECRET = "pgpassword-must-not-leak"


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def status_json(directory: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = cli("status", "-d", str(directory), "--format", "json", "--timeout", "3", *extra)
    assert result.exit_code in (0, 2, 3), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, document


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def applied_and_healthy(net: Any) -> None:
    result = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert result.exit_code == 0, result.output
    wait_for(lambda: status_json(net.dir, "--no-drift")[0] == 0, "every edge replicating")


def edge(document: dict[str, Any], provider: str) -> dict[str, Any]:
    return next(e for e in document["edges"] if e["provider"] == provider)


def insert(net: Any, node: str, rows: int = 1) -> None:
    for _ in range(rows):
        net.execute(
            node,
            "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, %s, %s, true)",
            (str(uuid.uuid4()), "written while the region is away", node),
        )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def variant(
    net: Any, tmp: Path, *, down: str | None = None, monitoring: dict[str, Any] | None = None
) -> Path:
    """A copy of the network's desired state: `down`'s DSN on a closed port, other thresholds."""
    target = tmp / "variant"
    shutil.copytree(net.dir, target)
    yaml = YAML(typ="safe")
    if down is not None:
        topology = yaml.load((target / "topology.yaml").read_text())
        dsn = topology["nodes"][down]["dsn"]
        port = next(p for p in dsn.split() if p.startswith("port="))
        topology["nodes"][down]["dsn"] = dsn.replace(port, f"port={closed_port()}")
        with (target / "topology.yaml").open("w") as out:
            yaml.dump(topology, out)
    if monitoring is not None:
        sets = yaml.load((target / "replication.yaml").read_text())
        sets["monitoring"] = monitoring
        with (target / "replication.yaml").open("w") as out:
            yaml.dump(sets, out)
    return target


def probe_slots_left(net: Any, node: str) -> list[str]:
    rows = net.execute(
        node, "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'reconcile_lag_%'"
    )
    return [r[0] for r in rows]


def test_healthy_network_after_apply(network: Any) -> None:
    net = network(SMALL)
    applied_and_healthy(net)
    code, doc = status_json(net.dir)
    assert code == 0 and doc["level"] == "ok" and doc["exit_code"] == 0
    assert sorted((e["subscriber"], e["provider"]) for e in doc["edges"]) == [
        ("nation", "region"), ("region", "d1"), ("region", "d2")
    ]  # fmt: skip
    assert {e["status"] for e in doc["edges"]} == {"replicating"}
    assert all(n["reachable"] and n["pglogical_version"] for n in doc["nodes"])
    assert all(n["drift"] == 0 for n in doc["nodes"])
    assert all(n["last_apply"]["result"] == "ok" for n in doc["nodes"])
    assert {s["node"] for s in doc["slots"]} == {"region", "d1", "d2"}
    assert not any(s["orphan"] for s in doc["slots"])
    text = cli("status", "-d", str(net.dir))
    assert text.exit_code == 0 and "Status: OK" in text.stdout
    prom = cli("status", "-d", str(net.dir), "--format", "prometheus")
    assert prom.exit_code == 0
    drift = {
        s.labels["node"]: s.value
        for f in text_string_to_metric_families(prom.stdout)
        for s in f.samples
        if s.name == "reconcile_drift_changes"
    }
    assert drift == {"nation": 0, "region": 0, "d1": 0, "d2": 0}
    assert probe_slots_left(net, "d1") == []


def test_region_down_lag_keeps_growing_until_crit(
    network: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", SECRET)
    net = network(SMALL)
    applied_and_healthy(net)
    # The region stops consuming (as if it were offline) and does not answer us.
    for district in ("d1", "d2"):
        net.execute("region", "SELECT pglogical.alter_subscription_disable(%s, true)",
                    (subscription_name("region", district),))  # fmt: skip
    limits = {"max_lag_seconds": 4, "max_retained_wal": "1GB", "warn_fraction": 0.25}
    directory = variant(net, tmp_path, down="region", monitoring=limits)
    insert(net, "d1")
    insert(net, "d2")
    code, first = status_json(directory)
    assert code == 3
    region = next(n for n in first["nodes"] if n["node"] == "region")
    assert not region["reachable"] and "refused" in region["reason"].lower()
    d1 = edge(first, "d1")
    assert d1["status"] == "unknown" and d1["slot_active"] is False
    assert d1["lag_bytes"] > 0 and d1["lag_seconds"] is not None
    retained_before = next(s["retained_bytes"] for s in first["slots"] if s["node"] == "d1")

    time.sleep(1.5)
    insert(net, "d1", rows=50)
    code, second = status_json(directory)
    assert code == 3
    grown = edge(second, "d1")
    # Truthful while the link is down: the oldest pending commit stays, its age grows.
    assert grown["lag_seconds"] >= d1["lag_seconds"] + 1.0
    assert next(s["retained_bytes"] for s in second["slots"] if s["node"] == "d1") > retained_before
    assert grown["lag_bytes"] > d1["lag_bytes"]

    def crit() -> bool:
        lag = edge(status_json(directory, "--no-drift")[1], "d1")
        return any(f["level"] == "crit" and f["message"].startswith("lag ") for f in lag["findings"])

    wait_for(crit, "lag seconds past max_lag_seconds", timeout=30)
    assert probe_slots_left(net, "d1") == []

    text = cli("status", "-d", str(directory), "--timeout", "3")
    assert text.exit_code == 3
    assert "unreachable" in text.stdout and SECRET not in text.stdout
    graph = cli("graph", "-d", str(directory), "--timeout", "3")
    assert graph.exit_code == 0
    assert "region<br/>region, UNREACHABLE" in graph.stdout
    assert "class region unreachable" in graph.stdout
    offline = cli("graph", "-d", str(directory), "--offline", "--format", "dot")
    assert (
        offline.exit_code == 0
        and '"d1" -> "region"' in offline.stdout
        and "UNREACHABLE" not in offline.stdout
    )


def test_lost_slot_says_recopy_needed(network: Any, pg_servers: Any) -> None:
    net = network(SMALL)
    applied_and_healthy(net)
    net.execute("region", "SELECT pglogical.alter_subscription_disable(%s, true)",
                (subscription_name("region", "d1"),))  # fmt: skip
    insert(net, "d1")
    # max_slot_wal_keep_size is server-wide: set on the district server of this
    # test session only, and reset whatever happens.
    admin = psycopg.connect(pg_servers.dsn(0), autocommit=True)
    try:
        admin.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
        admin.execute("SELECT pg_reload_conf()")

        def lost() -> bool:
            for _ in range(3):
                admin.execute("SELECT pg_switch_wal()")
                insert(net, "d1")
            admin.execute("CHECKPOINT")
            rows = net.execute(
                "d1", "SELECT wal_status FROM pg_replication_slots WHERE database = current_database()"
            )
            return [r[0] for r in rows] == ["lost"]

        wait_for(lost, "the slot to be invalidated", timeout=30)
    finally:
        admin.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
        admin.execute("SELECT pg_reload_conf()")
        admin.close()
    code, doc = status_json(net.dir)
    assert code == 2
    (slot,) = [s for s in doc["slots"] if s["node"] == "d1"]
    assert slot["wal_status"] == "lost" and slot["level"] == "crit"
    assert any("re-copy needed" in f["message"] for f in slot["findings"])
    assert edge(doc, "d1")["level"] == "crit"
    assert any("re-copy needed" in f["message"] for f in edge(doc, "d1")["findings"])
    text = cli("status", "-d", str(net.dir))
    assert "re-copy needed" in text.stdout
    prom = cli("status", "-d", str(net.dir), "--format", "prometheus", "--no-drift")
    lost_series = [
        s for f in text_string_to_metric_families(prom.stdout) for s in f.samples
        if s.name == "reconcile_slot_wal_status" and s.labels["wal_status"] == "lost" and s.value == 1
    ]  # fmt: skip
    assert [s.labels["node"] for s in lost_series] == ["d1"]


def test_orphan_slot_made_by_hand_is_reported(network: Any) -> None:
    net = network(SMALL)
    applied_and_healthy(net)
    net.execute("d2", "SELECT pg_create_logical_replication_slot('pgl_handmade_orphan', 'pglogical_output')")
    try:
        code, doc = status_json(net.dir)
        assert code == 2
        orphan = next(s for s in doc["slots"] if s["slot"] == "pgl_handmade_orphan")
        assert orphan["node"] == "d2" and orphan["orphan"] and orphan["subscription"] is None
        assert orphan["level"] == "warn" and "orphan" in orphan["findings"][0]["message"]
        assert next(n for n in doc["nodes"] if n["node"] == "d2")["drift"] == 1  # plan drops it
    finally:
        net.execute("d2", "SELECT pg_drop_replication_slot('pgl_handmade_orphan')")


def test_status_writes_textfile_atomically(network: Any, tmp_path: Path) -> None:
    net = network(SMALL)
    out = tmp_path / "textfile"
    out.mkdir()
    target = out / "reconcile.prom"
    result = cli("status", "-d", str(net.dir), "--format", "prometheus", "-o", str(target), "--no-drift")
    assert result.exit_code == 2  # nothing applied yet: subscriptions missing
    assert result.stdout == ""
    names = {f.name for f in text_string_to_metric_families(target.read_text())}
    assert {"reconcile_node_up", "reconcile_edge_status", "reconcile_read_success"} <= names
    assert [p.name for p in out.iterdir()] == ["reconcile.prom"]
