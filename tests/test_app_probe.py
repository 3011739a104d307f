"""app_url: offline rules, the probe against a local HTTP(S) server (up, down, slow, 500, redirects, TLS), status/serve/graph."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.errors import LoadError
from reconciler.health.app_probe import probe_app
from reconciler.health.judge import judge
from reconciler.load import load_desired_texts
from reconciler.render.prometheus import render_prometheus

SLOW = 0.4  # seconds /slow waits before answering (well inside the probes' timeout)


class Handler(BaseHTTPRequestHandler):
    """/ok 200, /error 500, /slow 200 after SLOW s, /drip one header byte every 0.2 s (never done),
    /here 302 to /ok, /away 302 to another host, /downgrade 302 from https to http."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path
        if path == "/drip":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(200):  # 40 s: far past any probe's timeout
                try:
                    self.wfile.write(b"X")
                    self.wfile.flush()
                except OSError:
                    return  # the probe gave up
                time.sleep(0.2)
            return
        if path == "/slow":
            time.sleep(SLOW)
        redirects = {
            "/here": "/ok",
            "/away": "http://elsewhere.invalid/ok",
            "/downgrade": "http://127.0.0.1/ok",
        }
        if path in redirects:
            self.send_response(302)
            self.send_header("Location", redirects[path])
        else:
            self.send_response({"/ok": 200, "/slow": 200, "/error": 500}.get(path, 404))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet test output


def _start(server: ThreadingHTTPServer) -> Iterator[str]:
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """host:port of a plain HTTP server this module starts."""
    yield from _start(ThreadingHTTPServer(("127.0.0.1", 0), Handler))


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """host:port of an HTTPS server with a self-signed certificate, and that certificate (the CA file)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed: cannot make a certificate for the https probe")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for address in _start(server):
        yield address, cert


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the probe ---------------------------------------------------------------


def test_up_answers_2xx_with_its_latency(site: str) -> None:
    reading = probe_app("d1", f"http://{site}/ok", timeout=5)
    assert (reading.up, reading.http_status, reading.reason) == (True, 200, None)
    slow = probe_app("d1", f"http://{site}/slow", timeout=5)
    assert slow.up and SLOW <= slow.seconds < SLOW + 2


def test_500_is_down_with_its_status(site: str) -> None:
    reading = probe_app("d1", f"http://{site}/error", timeout=5)
    assert (reading.up, reading.http_status, reading.reason) == (False, 500, "HTTP 500")


def test_nothing_listening_is_down() -> None:
    reading = probe_app("d1", f"http://127.0.0.1:{closed_port()}/", timeout=5)
    assert (reading.up, reading.http_status, reading.reason) == (False, None, "connection refused")


def test_slow_answer_is_cut_at_the_timeout(site: str) -> None:
    """A server sending one byte every 0.2 s never trips a socket timeout: the probe's deadline ends it."""
    started = time.monotonic()
    reading = probe_app("d1", f"http://{site}/drip", timeout=1)
    took = time.monotonic() - started
    assert not reading.up and reading.reason == "no answer within 1 s"
    assert 1 <= took < 2.5 and reading.seconds < 2.5
    late = probe_app("d1", f"http://{site}/slow", timeout=SLOW / 4)
    assert not late.up and late.reason == f"no answer within {SLOW / 4:g} s"


def test_redirects_followed_on_the_same_host_only(site: str) -> None:
    same = probe_app("d1", f"http://{site}/here", timeout=5)
    assert (same.up, same.http_status) == (True, 200)
    away = probe_app("d1", f"http://{site}/away", timeout=5)
    assert (away.up, away.http_status) == (False, 302)
    assert away.reason == "HTTP 302: redirect off-host (or to http) not followed"


def test_tls_verified_by_default_and_trusted_with_the_operators_ca_file(
    tls_site: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address, cert = tls_site
    refused = probe_app("d1", f"https://{address}/ok", timeout=5)
    assert not refused.up and refused.http_status is None
    assert refused.reason is not None and refused.reason.startswith("TLS certificate not trusted")
    trusted = probe_app("d1", f"https://{address}/ok", timeout=5, ca_file=cert)
    assert (trusted.up, trusted.http_status) == (True, 200)
    downgrade = probe_app("d1", f"https://{address}/downgrade", timeout=5, ca_file=cert)
    assert (downgrade.up, downgrade.http_status) == (False, 302)
    # The same through the operator's configuration, as status reads it.
    config = tmp_path / "config.toml"
    config.write_text(f'[app]\nca_file = "{cert}"\n')
    monkeypatch.setenv("RECONCILE_CONFIG", str(config))
    directory = state_dir(tmp_path, {"d1": f"https://{address}/ok"})
    result = CliRunner().invoke(app, ["status", "-d", str(directory), "--format", "json", "--timeout", "2",
                                      "--no-drift"])  # fmt: skip
    apps = json.loads(result.stdout)["apps"]
    assert [(a["node"], a["up"], a["http_status"]) for a in apps] == [("d1", True, 200)]


# -- offline rules -----------------------------------------------------------

TOPOLOGY = """version: 1
levels: [district, region]
nodes:
  region: {{level: region, dsn: "host=127.0.0.1 port={region} dbname=r user=postgres"}}
  d1:
    level: district
    upstream: region
    dsn: "host=127.0.0.1 port={d1} dbname=d1 user=postgres"
    app_url: {url}
replication_sets:
  approved:
    tables:
      public.technology: {{row_filter: approved}}
"""


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ('"ftp://example.org/"', "must start with http:// or https:// (not ftp)"),
        ('"example.org/health"', "must start with http:// or https:// (not no scheme)"),
        ('"https://admin:hunter2@example.org/"', "must not hold a user or password"),
        ('"http:///health"', "names no host"),
        ('"http://example.org:99999/"', "is not a URL (Port out of range 0-65535)"),
        ('"http://exämple.org/"', "holds U+00E4 at character 10"),
        ('"http://example.org/a b"', "holds U+0020 at character 21"),
        (f'"http://example.org/{"a" * 2100}"', "is longer than 2048 characters"),
    ],
)
def test_bad_app_url_is_refused_at_its_place(url: str, says: str) -> None:
    text = TOPOLOGY.format(region=closed_port(), d1=closed_port(), url=url)
    with pytest.raises(LoadError) as caught:
        load_desired_texts({"topology.yaml": text}, "ds")
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 1, problems
    assert problems[0].startswith("topology.yaml:9:14: node 'd1': app_url "), problems
    assert says in problems[0]
    assert "hunter2" not in problems[0]


def test_good_app_urls_load() -> None:
    for url in (
        "https://district-a.example.org/health",
        "http://10.1.2.3:8080/up?deep=1",
        "http://[::1]:81/",
    ):
        text = TOPOLOGY.format(region=closed_port(), d1=closed_port(), url=url)
        state = load_desired_texts({"topology.yaml": text}, "ds")
        assert state.nodes["d1"].app_url == url


# -- status, serve, graph ----------------------------------------------------


def state_dir(tmp_path: Path, urls: dict[str, str], d1_port: int | None = None) -> Path:
    """Two nodes on closed ports (or d1 on `d1_port`); `urls` per node."""
    directory = tmp_path / "ds"
    directory.mkdir(exist_ok=True)
    lines = ["version: 1", "levels: [district, region]", "nodes:"]
    for node, level, upstream, port in (
        ("region", "region", None, closed_port()),
        ("d1", "district", "region", d1_port or closed_port()),
    ):
        lines.append(f"  {node}:")
        lines.append(f"    level: {level}")
        if upstream:
            lines.append(f"    upstream: {upstream}")
        lines.append(f'    dsn: "host=127.0.0.1 port={port} dbname={node} user=postgres"')
        if node in urls:
            lines.append(f'    app_url: "{urls[node]}"')
    lines += [
        "replication_sets:",
        "  approved:",
        "    tables:",
        "      public.technology: {row_filter: approved}",
    ]
    (directory / "topology.yaml").write_text("\n".join(lines) + "\n")
    return directory


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a hung database): reads wait the timeout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def test_status_probes_apps_alongside_the_node_reads(site: str, tmp_path: Path, silent_server: int) -> None:
    """A hung node and a slow site each cost the timeout once, side by side; the app is judged and exported."""
    directory = state_dir(
        tmp_path, {"d1": f"http://{site}/drip", "region": f"http://{site}/ok"}, d1_port=silent_server
    )
    env = {**os.environ, "PGCONNECT_TIMEOUT": "2"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "status", "-d", str(directory), "--format", "json",
         "--timeout", "2", "--no-drift"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    took = time.monotonic() - started
    assert result.returncode == 3, result.stderr  # nodes unreachable
    document = json.loads(result.stdout)
    apps = {a["node"]: a for a in document["apps"]}
    assert (apps["d1"]["up"], apps["d1"]["level"], apps["d1"]["reason"]) == (
        False,
        "crit",
        "no answer within 2 s",
    )
    assert apps["d1"]["findings"] == [{"level": "crit", "message": "application down: no answer within 2 s"}]
    assert (apps["region"]["up"], apps["region"]["http_status"], apps["region"]["level"]) == (True, 200, "ok")
    d1 = next(n for n in document["nodes"] if n["node"] == "d1")
    assert not d1["reachable"]
    assert took < 2 + 2 + 1.5, f"took {took:.1f} s: the probe did not run beside the node read"


def test_a_down_app_alone_makes_status_crit(site: str, tmp_path: Path) -> None:
    """Judged from readings (the nodes are fine): the exit code and text say the app is down."""
    from test_health_judge import healthy, state

    from reconciler.cli.exit_codes import for_status
    from reconciler.health.app_probe import AppReading
    from reconciler.render.status import render_status_text

    s = state()
    readings = healthy(s)
    down = probe_app("d1", f"http://{site}/error", timeout=5)
    up = probe_app("nation", f"http://{site}/ok", timeout=5)
    report = judge(s, readings, None, {"d1": down, "nation": up})
    assert judge(s, readings).level.value == "ok"
    assert report.level.value == "crit" and for_status(report) == 2
    text = render_status_text(report)
    assert f"  CRIT  d1: http://{site}/error: DOWN, HTTP 500," in text
    assert "          CRIT: application down: HTTP 500" in text
    assert f"  OK    nation: http://{site}/ok: up, HTTP 200," in text
    found = {
        (s.name, s.labels.get("node")): s.value
        for f in text_string_to_metric_families(render_prometheus(report, seconds=0.1, timestamp=1.0))
        for s in f.samples
    }
    assert found[("reconcile_app_up", "d1")] == 0 and found[("reconcile_app_up", "nation")] == 1
    assert found[("reconcile_app_http_status", "d1")] == 500
    assert found[("reconcile_app_probe_duration_seconds", "d1")] == down.seconds
    unanswered = AppReading(node="d2", url="http://x.invalid/", up=False, http_status=None, seconds=1.0)
    silent = judge(s, readings, None, {"d2": unanswered})
    assert ("reconcile_app_http_status", (("node", "d2"),)) in {
        (sample.name, tuple(sample.labels.items()))
        for f in text_string_to_metric_families(render_prometheus(silent, seconds=0.1, timestamp=1.0))
        for sample in f.samples
        if sample.value == 0
    }


def test_graph_shows_the_app(site: str, tmp_path: Path) -> None:
    directory = state_dir(tmp_path, {"d1": f"http://{site}/error", "region": f"http://{site}/ok"})
    result = CliRunner().invoke(app, ["graph", "-d", str(directory), "--timeout", "1"])
    assert result.exit_code == 0, result.output
    assert 'd1["d1<br/>district, UNREACHABLE, app DOWN"]' in result.stdout
    assert 'region["region<br/>region, UNREACHABLE, app up"]' in result.stdout
    offline = CliRunner().invoke(app, ["graph", "-d", str(directory), "--offline"])
    assert "app " not in offline.stdout


def test_serve_exports_the_app_metrics(site: str, tmp_path: Path) -> None:
    directory = state_dir(tmp_path, {"d1": f"http://{site}/ok", "region": f"http://{site}/error"})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "serve", "-d", str(directory), "--port", str(port),
         "--timeout", "1", "--no-drift"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        import urllib.request

        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                    body = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    found = {
        (s.name, s.labels.get("node")): s.value
        for f in text_string_to_metric_families(body)
        for s in f.samples
    }
    assert found[("reconcile_app_up", "d1")] == 1 and found[("reconcile_app_up", "region")] == 0
    assert found[("reconcile_app_http_status", "region")] == 500
