"""The Grafana dashboard in deploy/grafana: well formed, and every metric its queries use is one the exporter really serves."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML
from test_heartbeat import _sets_yaml
from test_prometheus import fetch, free_port
from test_status import SMALL, status_json
from test_status_page import Site

from tests.support import cli, wait_for

GRAFANA = Path(__file__).resolve().parent.parent / "deploy" / "grafana"
DASHBOARD = GRAFANA / "reconcile-dashboard.json"

# Metrics node_exporter serves (its filesystem collector), not reconcile: they cannot be checked here.
NODE_EXPORTER = {"node_filesystem_avail_bytes", "node_filesystem_size_bytes"}

# Every PromQL word the dashboard may use that is not a metric.
PROMQL = {
    "sum", "count", "max", "min", "avg", "time", "by", "without", "on", "ignoring", "group_left",
    "group_right", "and", "or", "unless", "bool", "offset", "rate", "increase", "predict_linear",
    "max_over_time", "min_over_time", "absent", "clamp_min", "topk", "bottomk", "sort", "sort_desc",
    "label_replace",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals (label values)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    text = re.sub(r"\b\d[\w.]*", "", text)  # numbers, 1e9 included
    return set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text)) - PROMQL


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) of every query, and the queries of template variables."""
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    found = [(p["title"], t["expr"]) for p in document["panels"] for t in p.get("targets", [])]
    for variable in document["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append((variable["name"], query if isinstance(query, str) else query["query"]))
    return found


def test_metric_names_reads_promql() -> None:
    expr = 'max by (node, slot) (foo_bytes{a=~"x.*"}) / on(job) group_left() bar_total[5m] > 1e9 and time()'
    assert metric_names(expr) == {"foo_bytes", "bar_total"}


def test_dashboard_is_well_formed_and_provisioned() -> None:
    document = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in document["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert document["uid"] == "reconcile-overview"
    for panel in document["panels"]:
        if panel["type"] == "row":
            continue
        # The data source is the dashboard's drop-down, never a UID of one installation.
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
    titles = " ".join(p["title"] for p in document["panels"]).lower()
    for wanted in ("nodes up", "applications up", "lag", "why", "retained", "safe wal", "disk", "freshness"):
        assert wanted in titles, wanted
    provisioning = YAML(typ="safe").load((GRAFANA / "provisioning" / "reconcile-dashboards.yml").read_text())
    (provider,) = provisioning["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/var/lib/grafana/")


@pytest.fixture
def site() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.server
def test_every_dashboard_metric_is_served_by_the_exporter(network: Any, site: int) -> None:
    """`reconcile serve` on a real applied network with an app_url and the heartbeat on, beaten once:
    its /metrics holds every reconcile metric the dashboard queries (node_exporter's, listed in
    NODE_EXPORTER, excepted), and the freshness panel's series of each district at the top."""
    net = network(SMALL, sets_yaml=_sets_yaml(heartbeat=True))
    applied = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert applied.exit_code == 0, applied.output

    def beaten() -> bool:
        result = cli("heartbeat", "-d", str(net.dir), "--timeout", "3")
        assert result.exit_code == 0, result.output
        return status_json(net.dir, "--no-drift")[0] == 0  # OK: every edge replicates, every beat arrived

    wait_for(beaten, "every edge replicating and both districts' beats at region and nation")
    yaml = YAML(typ="safe")
    topology = yaml.load((net.dir / "topology.yaml").read_text())
    topology["nodes"]["d1"]["app_url"] = f"http://127.0.0.1:{site}/health"
    with (net.dir / "topology.yaml").open("w") as out:
        yaml.dump(topology, out)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "serve", "-d", str(net.dir), "--port", str(port),
         "--cache-seconds", "60", "--timeout", "3", "--no-drift"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PGCONNECT_TIMEOUT": "3"},
    )  # fmt: skip
    try:
        served = fetch(f"http://127.0.0.1:{port}/metrics", time.monotonic() + 60)
        page = fetch(f"http://127.0.0.1:{port}/", time.monotonic() + 10)  # the same reading, cached
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    families = list(text_string_to_metric_families(served))
    exported = {family.name for family in families}
    queries = dashboard_queries()
    used = {name for _, expr in queries for name in metric_names(expr)}
    assert used & NODE_EXPORTER == NODE_EXPORTER, "NODE_EXPORTER lists a metric the dashboard no longer uses"
    for title, expr in queries:
        for name in metric_names(expr) - NODE_EXPORTER:
            assert name in exported, f"panel {title!r}: {name} is not served by the exporter"
    # A family is listed even with no sample: the freshness panel needs the beats themselves.
    seen = {
        (sample.labels["source"], sample.labels["observer"])
        for family in families
        for sample in family.samples
        if sample.name == "reconcile_freshness_seconds"
    }
    assert {("d1", "nation"), ("d2", "nation")} <= seen, seen
    # The status page of the same reading shows them too (the pure test in test_status_page renders it).
    assert 'data-key="d1@nation"' in page and "d2 as seen at nation: " in page
