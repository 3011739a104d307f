"""The tool itself under network faults: plan, status and apply with one node's admin link cut by tools/netproxy."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tools.netproxy import Link, NetProxy  # noqa: E402

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parent.parent
SMALL = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}
TIMEOUT = 2.0
# Timeout + process start-up and the other nodes' reads, generously.
BOUND = TIMEOUT + 15.0
# apply's deadline per action (server and client side) for the cut-link test.
STATEMENT_TIMEOUT = 4.0
# A cut link costs apply at most the action's deadline (+ the watchdog's 5 s
# margin), then one connect timeout for each re-read of the region.
APPLY_BOUND = STATEMENT_TIMEOUT + 5.0 + 3 * TIMEOUT + 15.0


@pytest.fixture
def proxy() -> Iterator[NetProxy]:
    with NetProxy() as p:
        yield p


def route_admin(net: Any, proxy: NetProxy, node: str) -> Link:
    """Point `node`'s admin_dsn at a proxy link in front of its server; `dsn` stays direct."""
    topology = net.dir / "topology.yaml"
    yaml = YAML(typ="safe")
    data = yaml.load(topology.read_text())
    dsn = data["nodes"][node]["dsn"]
    params = dict(part.split("=", 1) for part in dsn.split())
    link = proxy.add(f"admin-{node}", ("127.0.0.1", int(params["port"])))
    params["port"] = str(link.port)
    data["nodes"][node]["admin_dsn"] = " ".join(f"{k}={v}" for k, v in params.items())
    with topology.open("w") as out:
        yaml.dump(data, out)
    return link


def reconcile(*args: str, timeout: float = 300.0) -> tuple[int, str, float]:
    """Run the CLI as a separate process (a hang must not hang the test): exit code, output, seconds."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0


@pytest.mark.parametrize("mode", ["drop", "refuse"])
def test_plan_with_a_partitioned_node_exits_3_in_time_and_plans_the_rest(
    network: Any, proxy: NetProxy, mode: str
) -> None:
    net = network(SMALL)
    link = route_admin(net, proxy, "d1")
    link.partition(mode)  # type: ignore[arg-type]
    code, out, seconds = reconcile("plan", "-d", str(net.dir), "--timeout", str(TIMEOUT), "--format", "json")
    assert code == 3, out
    assert seconds < BOUND, f"plan took {seconds:.1f} s with --timeout {TIMEOUT}"
    document = json.loads(out[: out.rindex("}") + 1])
    assert list(document["unreachable"]) == ["d1"], document["unreachable"]
    # Everything else is still planned: the other nodes' creates are there.
    planned = {a.get("node") for a in document.get("actions", [])}
    assert {"nation", "region", "d2"} <= planned, planned
    assert "d1" not in planned


@pytest.mark.parametrize("mode", ["drop", "refuse"])
def test_status_with_a_partitioned_node_exits_3_in_time(network: Any, proxy: NetProxy, mode: str) -> None:
    net = network(SMALL)
    code, out, _ = reconcile("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty")
    assert code == 0, out
    link = route_admin(net, proxy, "region")
    link.partition(mode)  # type: ignore[arg-type]
    code, out, seconds = reconcile("status", "-d", str(net.dir), "--timeout", str(TIMEOUT))
    assert code == 3, out
    assert seconds < BOUND, f"status took {seconds:.1f} s with --timeout {TIMEOUT}"
    assert "region" in out
    for node in ("nation", "d1", "d2"):
        assert node in out
    link.heal()
    code, out, _ = reconcile("plan", "-d", str(net.dir), "--detailed-exitcode")
    assert code == 0, out


@pytest.mark.parametrize("mode", ["refuse", "drop"])
def test_apply_with_a_link_cut_half_way_reports_per_node_and_the_rerun_converges(
    network: Any, proxy: NetProxy, mode: str
) -> None:
    net = network(SMALL)
    link = route_admin(net, proxy, "region")
    code, out, _ = reconcile("plan", "-d", str(net.dir), "--format", "json")
    actions = json.loads(out[: out.rindex("}") + 1])["actions"]
    total = len(actions)
    assert total > 4
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-d", str(net.dir), "--auto-approve",
         "--allow-dirty", "--timeout", str(TIMEOUT), "--statement-timeout", str(STATEMENT_TIMEOUT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    cut_at: float | None = None
    while proc.poll() is None:
        started = sum(1 for line in list(lines) if line.rstrip().endswith("..."))
        # Half-way through the actions, the region's admin link fails.
        if cut_at is None and started >= total // 2:
            link.partition(mode)  # type: ignore[arg-type]
            cut_at = time.monotonic()
        if cut_at is not None and time.monotonic() - cut_at > APPLY_BOUND:
            proc.kill()
            proc.wait()
            reader.join(5)
            proc.stdout.close()
            pytest.fail(f"apply still running {APPLY_BOUND:g} s after the link failed ({mode}):\n" + "".join(lines))
        time.sleep(0.05)
    reader.join(10)
    proc.stdout.close()
    code = proc.returncode
    out = "".join(lines)
    print(out)  # the per-node report, shown when the test fails (or with -s)
    assert cut_at is not None, out
    assert code == 1, out
    assert "Traceback" not in out
    # A clear per-node report: what failed (or could not be re-read) names the region.
    assert ("failed:" in out and "region" in out) or "could not re-read region" in out, out
    assert "Apply:" in out or "error:" in out, out
    # Failure isolation: while the link is still cut, all that is left is the
    # region's own work and what waits on it (the nation's subscription to it).
    if "Apply:" in out:
        code, rest, _ = reconcile("plan", "-d", str(net.dir), "--timeout", str(TIMEOUT), "--format", "json")
        document = json.loads(rest[: rest.rindex("}") + 1])
        assert list(document["unreachable"]) == ["region"], rest
        for action in document["actions"]:
            assert action["node"] == "region" or "<- region" in action["description"], action
    link.heal()
    code, out, _ = reconcile("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty")
    assert code == 0, out
    assert "converged" in out or "No changes" in out, out
    code, out, _ = reconcile("plan", "-d", str(net.dir), "--detailed-exitcode")
    assert code == 0, out
