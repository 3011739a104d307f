"""Apply on a living network (real servers): failure isolation, interrupts, one session per node, rows converged."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support import assert_in_sync, cli, wait_for

from reconciler.apply import ApplyOptions, Event, Status, apply_plan
from reconciler.apply.locks import APPLY_LOCK_KEY
from reconciler.load import load_desired_state
from reconciler.planner import compute_plan
from reconciler.render.apply import render_apply_report

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parent.parent
SMALL = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}
WIDE = {"nation": None, "r1": "nation", "r2": "nation", "a": "r1", "b": "r1", "c": "r2", "d": "r2"}


def _apply_log(net: Any, node: str) -> list[tuple[str, str | None]]:
    rows = net.execute(node, "SELECT result, message FROM reconcile.apply_log ORDER BY id")
    return [(str(r[0]), r[1]) for r in rows]


def test_a_failing_node_stops_only_what_waits_on_it(network: Any) -> None:
    net = network(SMALL)
    state = load_desired_state(net.dir)
    plan = compute_plan(state, net.dir).plan
    # Once apply is under way, a long transaction at d1 takes its table: d1's
    # add_table cannot get its lock within the deadline and fails there.
    blocker = net.connect("d1")
    blocker.autocommit = False

    def progress(event: Event) -> None:
        if (
            event.node == "d1"
            and event.action is not None
            and event.status is None
            and blocker.info.transaction_status == 0
        ):
            blocker.execute("LOCK TABLE public.technology IN ACCESS EXCLUSIVE MODE")

    try:
        report = apply_plan(state, net.dir, plan, ApplyOptions(statement_timeout=3), progress)
    finally:
        blocker.rollback()
        blocker.close()
    out = render_apply_report(report)
    assert not report.converged, out
    # The failure is said once, with its reason, at d1; region's subscription to d1 waits on d1.
    assert re.search(r"  d1: failed: \+ table public\.technology .*: .*statement timeout", out), out
    assert out.count("statement timeout") == 1, out
    assert re.search(r"  region: waiting on d1: 1 action\(s\)\n      \+ subscription region_from_d1 ", out), (
        out
    )
    # Everything else converged: only d1's remaining table and the subscription to it are left.
    left = sorted((a.node, a.subject) for a in compute_plan(state, net.dir).plan.actions)
    assert left == [("d1", "table approved/public.technology"), ("region", "subscription region_from_d1")], (
        left
    )
    assert _apply_log(net, "d2")[-1][0] == "ok"
    assert _apply_log(net, "d1")[-1][0] == "failed"
    # The rerun converges, and the d1 failure record is superseded.
    result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty")
    assert result.exit_code == 0, result.output
    assert_in_sync(net.dir)
    assert _apply_log(net, "d1")[-1][0] == "ok"


def test_one_session_and_one_lock_per_node_and_its_actions_never_overlap(network: Any) -> None:
    net = network(WIDE)
    state = load_desired_state(net.dir)
    plan = compute_plan(state, net.dir).plan
    holders: dict[str, set[int]] = {}
    guard = threading.Lock()

    def progress(event: Event) -> None:
        if event.action is None or event.status is not None:
            return
        # While an action runs, exactly one session holds the node's apply lock.
        with psycopg.connect(net.dsn(event.node), autocommit=True) as conn:
            pids = {
                int(r[0])
                for r in conn.execute(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND classid = %s AND objid = %s AND objsubid = 1"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    (APPLY_LOCK_KEY >> 32, APPLY_LOCK_KEY & 0xFFFFFFFF),
                ).fetchall()
            }
        with guard:
            holders.setdefault(event.node, set()).update(pids)

    report = apply_plan(state, net.dir, plan, ApplyOptions(parallelism=8), progress)
    assert report.converged, report
    assert {node: len(pids) for node, pids in holders.items()} == {node: 1 for node in WIDE}
    by_node: dict[str, list[tuple[float, float]]] = {}
    for o in report.outcomes:
        assert o.status is Status.DONE and o.started is not None and o.ended is not None
        by_node.setdefault(o.action.node, []).append((o.started, o.ended))
    for node, spans in by_node.items():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start, f"two actions of {node} overlapped"
    # Concurrency happened: some actions of different nodes overlapped in time.
    spans = sorted(
        (o.started, o.ended) for o in report.outcomes if o.started is not None and o.ended is not None
    )
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))
    assert_in_sync(net.dir)


def _interrupt(directory: Path, after: int, sig: int) -> tuple[int, str]:
    """Run apply in a process; send `sig` once `after` actions have started; its exit code and output."""
    lines: list[str] = []
    sent = False
    with subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-d", str(directory), "--auto-approve", "--allow-dirty",
         "--parallelism", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if not sent and sum(1 for x in lines if x.rstrip().endswith(" ...")) >= after:
                proc.send_signal(sig)
                sent = True
        code = proc.wait(timeout=120)
    assert sent, "".join(lines)
    return code, "".join(lines)


@pytest.mark.parametrize(("after", "sig"), [(1, signal.SIGINT), (6, signal.SIGTERM), (12, signal.SIGINT)])
def test_an_interrupted_apply_says_what_was_done_and_the_rerun_converges(
    network: Any, after: int, sig: int
) -> None:
    net = network(SMALL)
    code, out = _interrupt(net.dir, after, sig)
    assert code == 130, out
    assert "Traceback" not in out
    assert "Interrupted: no new action was started" in out, out
    assert re.search(r"not started \(interrupted\): \d+ action\(s\)", out), out
    results = {node: _apply_log(net, node)[-1][0] for node in SMALL if _apply_log(net, node)}
    assert "interrupted" in results.values(), results
    assert set(results.values()) <= {"ok", "interrupted"}, results
    status = cli("status", "-d", str(net.dir))
    assert "WARN: last apply interrupted" in status.output, status.output
    result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty")
    assert result.exit_code == 0, result.output
    assert_in_sync(net.dir)
    # Every node's newest record is ok now: status warns about no apply.
    assert {node: _apply_log(net, node)[-1][0] for node in SMALL} == {node: "ok" for node in SMALL}
    status = cli("status", "-d", str(net.dir))
    assert "WARN: last apply" not in status.output, status.output


def test_a_running_record_whose_apply_is_gone_reads_interrupted_and_a_no_change_apply_supersedes_it(
    network: Any,
) -> None:
    net = network(SMALL)
    assert cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty").exit_code == 0
    # An apply killed with -9 leaves its record `running` and no lock.
    net.execute(
        "d2",
        "INSERT INTO reconcile.apply_log (os_user, client_host, tool_version, result, actions)"
        " VALUES ('x', 'h', 'v', 'running', '[]')",
    )
    status = cli("status", "-d", str(net.dir), "--format", "json")
    assert '"interrupted"' in status.output, status.output
    plan = cli("plan", "-d", str(net.dir))
    assert "No changes." in plan.output, plan.output
    assert "the last apply did not complete on d2 (interrupted)" in plan.output, plan.output
    result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty")
    assert result.exit_code == 0, result.output
    assert "Recorded an ok apply on d2" in result.output, result.output
    assert _apply_log(net, "d2")[-1][0] == "ok"
    status = cli("status", "-d", str(net.dir))
    assert "WARN: last apply" not in status.output, status.output


def test_a_district_moved_with_a_writer_running_loses_no_row_anywhere(network: Any) -> None:
    net = network(WIDE)
    assert cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty").exit_code == 0
    wait_for(lambda: "initializing" not in cli("status", "-d", str(net.dir)).output, "initial syncs", 120)
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        with psycopg.connect(net.dsn("b"), autocommit=True) as conn:
            while not stop.is_set():
                key = str(uuid.uuid4())
                conn.execute(
                    "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'w', 'b', true)",
                    (key,),
                )
                written.append(key)
                time.sleep(0.02)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        topology = net.dir / "topology.yaml"
        text = topology.read_text()
        moved = re.sub(r"(\n  b:\n(?:    .*\n)*?    upstream: )r1", r"\1r2", text)
        assert moved != text
        topology.write_text(moved)
        result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty", "--allow-destroy")
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(10)
    assert result.exit_code == 0, result.output
    assert "converged: catalogs and rows" in result.output, result.output
    wanted = set(written)

    def holds_all(node: str) -> bool:
        rows = net.execute(node, "SELECT id::text FROM public.technology WHERE district = 'b'")
        return wanted <= {r[0] for r in rows}

    # Rows written after the apply ended flow on by replication: wait, bounded.
    wait_for(lambda: holds_all("r2") and holds_all("nation"), "b's rows at r2 and the nation", 60)
    verify = cli("verify", "-d", str(net.dir), "--node", "b")
    assert verify.exit_code == 0, verify.output


def test_a_widened_filter_ends_with_the_rows_it_now_passes_repaired_upstream(network: Any) -> None:
    net = network(SMALL)
    assert cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty").exit_code == 0
    # Drafts titled 'shared' stay at d1 under the old filter.
    keys = [str(uuid.uuid4()) for _ in range(5)]
    for key in keys:
        net.execute(
            "d1", "INSERT INTO public.technology (id, title, district) VALUES (%s, 'shared', 'd1')", (key,)
        )
    # A row the region holds that no district passes: apply's repair keeps it (a delete would replicate up).
    stray = str(uuid.uuid4())
    net.execute(
        "region", "INSERT INTO public.technology (id, title, district) VALUES (%s, 'stray', 'zz')", (stray,)
    )
    sets = net.dir / "replication.yaml"
    sets.write_text(
        sets.read_text().replace('row_filter: "approved"', "row_filter: \"approved OR title = 'shared'\"")
    )
    plan = cli("plan", "-d", str(net.dir))
    assert "[needs verify]" in plan.output and "apply verifies and repairs" in plan.output, plan.output
    # A replaced filter does not copy what it now passes: apply verifies and repairs exactly that
    # table, at the region and at the nation (which gets the repaired rows by replication).
    result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty")
    assert result.exit_code == 0, result.output
    assert "converged: catalogs and rows" in result.output, result.output
    assert re.search(
        r"rows: verified 2 table\(s\) on 2 subscriber\(s\), 5 row\(s\) repaired", result.output
    ), result.output
    held = {
        r[0] for r in net.execute("region", "SELECT id::text FROM public.technology WHERE title = 'shared'")
    }
    assert held == set(keys)
    wait_for(
        lambda: (
            len(net.execute("nation", "SELECT 1 FROM public.technology WHERE title = 'shared'")) == len(keys)
        ),
        "the repaired rows at the nation",
        60,
    )
    assert (
        "kept rows no provider passes" in result.output
        and "1 in public.technology at region" in result.output
    )
    assert net.execute("region", "SELECT count(*) FROM public.technology WHERE id = %s", (stray,))[0][0] == 1
    # What the report advises removes it, and then everything verifies.
    assert cli("verify", "-d", str(net.dir), "--repair").exit_code == 0
    assert cli("verify", "-d", str(net.dir)).exit_code == 0


def test_no_repair_leaves_the_rows_and_says_so(network: Any) -> None:
    net = network({"region": None, "d1": "region"}, levels=("district", "region"))
    assert cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty").exit_code == 0
    net.execute(
        "d1", "INSERT INTO public.technology (id, title, district) VALUES (gen_random_uuid(), 'shared', 'd1')"
    )
    sets = net.dir / "replication.yaml"
    sets.write_text(
        sets.read_text().replace('row_filter: "approved"', "row_filter: \"approved OR title = 'shared'\"")
    )
    result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty", "--no-repair")
    assert result.exit_code == 0, result.output
    assert "catalogs converged; rows: NOT verified (--no-repair)" in result.output, result.output
    assert net.execute("region", "SELECT count(*) FROM public.technology WHERE title = 'shared'")[0][0] == 0
