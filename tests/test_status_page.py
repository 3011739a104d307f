"""The status page on serve's /: pure rendering (escaping, layout) and the real page in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from test_health_judge import MONITORING, healthy, state
from test_prometheus import free_port
from test_status import applied_and_healthy, variant

from reconciler.health.judge import judge
from reconciler.health.readings import NodeReading
from reconciler.health.report import AppHealth, Finding, Level
from reconciler.load import load_desired_texts
from reconciler.render.graph import COLOURS
from reconciler.render.status_page import render_status_page
from reconciler.render.topology_svg import columns

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


class Elements(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    return parser


def test_page_escapes_what_the_desired_state_and_the_servers_say() -> None:
    s = state()
    readings = healthy(s)
    readings["d1"] = NodeReading(node="d1", reachable=False, reason=f"{HOSTILE} password=hunter2")
    report = judge(s, readings, None)
    app = AppHealth(
        node="nation", url=f"http://127.0.0.1/?{HOSTILE}", up=False, http_status=500, seconds=0.01,
        reason=HOSTILE, level=Level.CRIT, findings=(Finding(level=Level.CRIT, message=HOSTILE),),
    )  # fmt: skip
    report = report.model_copy(update={"apps": (app,)})
    page = render_status_page(s, report, timestamp=1_800_000_000.0, seconds=0.5, refresh_seconds=10)
    tags = {tag for tag, _ in parse(page).tags}
    assert "script" not in tags and "img" not in tags and "a" not in tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "hunter2" not in page
    text = "".join(parse(page).text)
    assert f"http://127.0.0.1/?{HOSTILE}" in text  # shown, as text
    assert '<meta http-equiv="refresh" content="10">' in page
    assert "2027-01-15 08:00:00 UTC" in page


def test_page_shows_freshness_at_every_tier_above_each_leaf_in_its_level_colour() -> None:
    s = state(MONITORING + "  heartbeat: true\n  max_freshness_seconds: 10\n")  # WARN at 5 s
    readings = healthy(s)
    readings["region"] = readings["region"].model_copy(update={"beats": {"d1": 1.0, "d2": 12.0}})
    readings["nation"] = readings["nation"].model_copy(update={"beats": {"d1": 6.0}})
    report = judge(s, readings, None)
    page = render_status_page(s, report, timestamp=1_800_000_000.0, seconds=0.5, refresh_seconds=10)
    rows = dict(re.findall(r'<tr data-key="([^"]+)">(.*?)</tr>', page.split('id="freshness"')[1]))
    assert sorted(rows) == ["d1@nation", "d1@region", "d2@nation", "d2@region"]
    cells = {key: re.findall(r"<td[^>]*>(.*?)</td>", row) for key, row in rows.items()}
    assert cells["d1@region"][:2] == ["d1 as seen at region: 1.0 s", "OK"]
    assert cells["d1@nation"][:2] == ["d1 as seen at nation: 6.0 s", "WARN"]
    assert cells["d2@region"][:2] == ["d2 as seen at region: 12 s", "CRIT"]
    assert '<td class="level-crit">CRIT</td>' in rows["d2@region"]
    assert cells["d2@nation"][:2] == ["d2 as seen at nation: ?", "WARN"]
    assert "no beat of d2 has reached nation" in rows["d2@nation"]
    assert "freshness 10 s; WARN at 0.5 of each" in page
    # What a server said is escaped here too.
    hostile = report.freshness[0].model_copy(update={"source": HOSTILE})
    page = render_status_page(
        s, report.model_copy(update={"freshness": (hostile,)}), timestamp=0.0, seconds=0.1, refresh_seconds=5
    )
    assert "script" not in {tag for tag, _ in parse(page).tags}
    assert f"{HOSTILE} as seen at nation" in "".join(parse(page).text)
    # No heartbeat, no table.
    plain = render_status_page(state(), judge(state(), healthy(state()), None), timestamp=0.0, seconds=0.1,
                               refresh_seconds=5)  # fmt: skip
    assert 'id="freshness"' not in plain and "freshness" not in plain.lower()


def test_page_of_a_failed_reading_says_so() -> None:
    page = render_status_page(
        None, None, timestamp=0.0, seconds=0.1, refresh_seconds=5, failure="the desired state does not load"
    )
    assert "The last reading failed: the desired state does not load." in page
    assert "<table" not in page and "<svg" not in page


def test_layout_puts_every_parent_above_the_middle_of_its_children() -> None:
    topology = """
version: 1
levels: [district, region, nation]
nodes:
  nation: {level: nation, dsn: "host=n dbname=n"}
  east: {level: region, upstream: nation, dsn: "host=e dbname=e"}
  west: {level: region, upstream: nation, dsn: "host=w dbname=w"}
  a: {level: district, upstream: east, dsn: "host=a dbname=a"}
  b: {level: district, upstream: east, dsn: "host=b dbname=b"}
  c: {level: district, upstream: west, dsn: "host=c dbname=c"}
  d: {level: district, upstream: west, dsn: "host=d dbname=d"}
  e: {level: district, upstream: west, dsn: "host=e2 dbname=e"}
replication_sets: {s: {tables: {public.t: {}}}}
"""
    cols = columns(load_desired_texts({"topology.yaml": topology}, "test"))
    assert [cols[n] for n in "abcde"] == [0, 1, 2, 3, 4]  # leaves side by side, none shared
    assert cols["east"] == 0.5 and cols["west"] == 3 and cols["nation"] == 1.75


# --- the page served by `reconcile serve`, loaded in headless Chromium ---------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found is not None:
            return found
    pytest.skip("chromium is not installed (Debian: apt-get install chromium): the page is not loaded")


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--no-first-run", f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


class Site(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


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


def fetch(url: str, deadline: float) -> tuple[str, dict[str, str]]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError:
            raise
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.server
def test_serve_page_in_chromium(network: Any, tmp_path: Path, site: int) -> None:
    """The example network applied, one district unreachable, a hostile app_url: every node in the
    drawing and the table, coloured as graph colours it, no markup from the desired state."""
    binary = chromium()
    net = network()
    applied_and_healthy(net)
    directory = variant(net, tmp_path, down="district_d")
    yaml = YAML(typ="safe")
    topology = yaml.load((directory / "topology.yaml").read_text())
    topology["nodes"]["nation"]["app_url"] = f"http://127.0.0.1:{site}/health?{HOSTILE.replace(' ', '%20')}"
    with (directory / "topology.yaml").open("w") as out:
        yaml.dump(topology, out)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "serve", "-d", str(directory), "--port", str(port),
         "--cache-seconds", "60", "--timeout", "3", "--no-drift"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PGCONNECT_TIMEOUT": "3"},
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        page, headers = fetch(url, time.monotonic() + 60)  # also makes the one reading both will show
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        profile = tmp_path / "chromium-profile"
        dom = run_chromium(binary, profile, "--dump-dom", url).stdout
        shot = tmp_path / "status-page.png"
        run_chromium(binary, profile, f"--screenshot={shot}", "--window-size=1600,1400", url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stderr is not None
        log = proc.stderr.read().decode()
        proc.stderr.close()
    assert "Traceback" not in log, log
    assert shot.stat().st_size > 10_000, "the screenshot is empty"
    elements = parse(dom)
    drawn = {a["data-node"]: a for tag, a in elements.tags if tag == "g" and "data-node" in a}
    listed = {a["data-key"] for tag, a in elements.tags if tag == "tr" and "data-key" in a}
    assert set(drawn) == set(net.state.nodes)
    assert set(net.state.nodes) <= listed
    assert drawn["district_d"]["data-health"] == "unreachable"
    assert drawn["district_a"]["data-health"] == "ok"
    assert drawn["nation"]["data-health"] == "ok"  # its site answered 200
    fills = [a["fill"] for tag, a in elements.tags if tag == "rect"]
    assert fills.count(COLOURS["unreachable"][0]) == 1 and fills.count(COLOURS["ok"][0]) == 6
    tags = {tag for tag, _ in elements.tags}
    assert "script" not in tags and "img" not in tags
    assert "Applications (app_url)" in "".join(elements.text)
    # Chromium's DOM is the page as served, parsed: the same rows.
    assert {a["data-key"] for tag, a in parse(page).tags if tag == "tr" and "data-key" in a} == listed
