"""Schema migrations rolled out on real servers: tier by tier, no link down, rows with the new shape arrive.

One network per scenario: the example network's shape (a nation, two
regions, four districts), each tier on its own server.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from support import assert_in_sync, cli, wait_for

from reconciler.actions import RunMigration
from reconciler.apply import ApplyOptions, Event, Status, apply_plan
from reconciler.health.judge import judge
from reconciler.health.reader import read_network
from reconciler.load import load_desired_state
from reconciler.planner import compute_plan
from reconciler.render.prometheus import render_prometheus
from reconciler.render.status import render_status_text

pytestmark = pytest.mark.server

EXAMPLE = {
    "nation": None,
    "region_east": "nation",
    "region_west": "nation",
    "district_a": "region_east",
    "district_b": "region_east",
    "district_c": "region_west",
    "district_d": "region_west",
}
ADD = """-- a summary for every technology, and a new table in the set
ALTER TABLE public.technology ADD COLUMN summary text;
CREATE TABLE public.practice (id uuid PRIMARY KEY, title text NOT NULL, approved boolean NOT NULL);
"""
PRACTICE = """      public.practice:
        row_filter: "approved"
"""
DROP = """-- reconcile: leaves-first
ALTER TABLE public.technology DROP COLUMN summary;
"""


def _write(directory: Path, name: str, text: str) -> None:
    (directory / "migrations").mkdir(exist_ok=True)
    (directory / "migrations" / name).write_text(text)


def _add_practice_to_set(directory: Path) -> None:
    path = directory / "replication.yaml"
    text = path.read_text()
    marker = "    tables:\n"
    assert marker in text
    path.write_text(text.replace(marker, marker + PRACTICE, 1))


def _down(net: Any) -> list[str]:
    """Every subscription of the network whose status is down, as 'node: name'."""
    found = []
    for node in EXAMPLE:
        rows = net.execute(node, "SELECT subscription_name, status FROM pglogical.show_subscription_status()")
        found += [f"{node}: {name}" for name, status in rows if status == "down"]
    return found


class Watch:
    """Polls every subscription's status while apply runs; keeps whatever was down."""

    def __init__(self, net: Any) -> None:
        self.net = net
        self.seen: set[str] = set()
        self.polls = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self.seen.update(_down(self.net))
            self.polls += 1

    def __enter__(self) -> Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def _apply(net: Any, directory: Path, **state_changes: Any) -> tuple[Any, list[Event]]:
    state = load_desired_state(directory)
    if state_changes:
        state = state.model_copy(update=state_changes)
    plan = compute_plan(state, directory).plan
    events: list[Event] = []
    report = apply_plan(state, directory, plan, ApplyOptions(statement_timeout=30), events.append)
    return report, events


def test_additive_then_leaves_first_rollout_keeps_every_link_up_and_rows_arrive(network: Any) -> None:
    net = network(EXAMPLE)
    directory = Path(net.dir)
    assert cli("apply", "-d", str(directory), "--auto-approve").exit_code == 0
    _write(directory, "0001_add_summary.sql", ADD)
    _add_practice_to_set(directory)

    plan = cli("plan", "-d", str(directory))
    assert plan.exit_code == 0, plan.output
    assert plan.stdout.count("+ migration 0001_add_summary (top down") == 7, plan.stdout
    assert "table public.practice in set approved" in plan.stdout

    with Watch(net) as watch:
        report, events = _apply(net, directory)
    assert not report.failed, [(o.action.describe(), o.detail) for o in report.outcomes]
    assert watch.polls > 0 and not watch.seen, watch.seen
    # Top-down: each migration ran only after the one on its upstream finished.
    ended = {
        e.node: i
        for i, e in enumerate(events)
        if e.action is not None and e.action.kind == "run_migration" and e.status is Status.DONE
    }
    started = {
        e.node: i
        for i, e in enumerate(events)
        if e.action is not None and e.action.kind == "run_migration" and e.status is None
    }
    for node, upstream in EXAMPLE.items():
        if upstream is not None:
            assert ended[upstream] < started[node], (node, upstream)
    rows = net.execute("district_c", "SELECT name, os_user, desired_commit IS NULL FROM reconcile.schema_migrations")
    assert [r[0] for r in rows] == ["0001_add_summary"] and rows[0][1]
    assert_in_sync(directory)

    # Rows written at a district with the new column and in the new table reach the top.
    tid, pid = str(uuid.uuid4()), str(uuid.uuid4())
    net.execute(
        "district_a",
        "INSERT INTO public.technology (id, title, district, approved, summary) VALUES (%s, 't', 'a', true, 'new')",
        (tid,),
    )
    net.execute("district_d", "INSERT INTO public.practice VALUES (%s, 'p', true)", (pid,))

    def arrived() -> bool:
        tech = net.execute("nation", "SELECT summary FROM public.technology WHERE id = %s", (tid,))
        practice = net.execute("nation", "SELECT title FROM public.practice WHERE id = %s", (pid,))
        return tech == [("new",)] and practice == [("p",)]

    wait_for(arrived, "the district rows with the new shape at the nation", timeout=60)

    # Leaves first, with writes running at a district: no link breaks, no row lost.
    _write(directory, "0002_drop_summary.sql", DROP)
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        conn = net.connect("district_b")
        try:
            while not stop.is_set():
                key = str(uuid.uuid4())
                conn.execute(
                    "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'w', 'b', true)",
                    (key,),
                )
                written.append(key)
                stop.wait(0.05)
        finally:
            conn.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with Watch(net) as watch:
            report, events = _apply(net, directory)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not report.failed, [(o.action.describe(), o.detail) for o in report.outcomes]
    assert not watch.seen, watch.seen
    ended = {
        e.node: i
        for i, e in enumerate(events)
        if e.action is not None and e.action.kind == "run_migration" and e.status is Status.DONE
    }
    started = {
        e.node: i
        for i, e in enumerate(events)
        if e.action is not None and e.action.kind == "run_migration" and e.status is None
    }
    for node, upstream in EXAMPLE.items():
        if upstream is not None:
            assert ended[node] < started[upstream], (node, upstream)
    assert len(written) > 10

    def all_arrived() -> bool:
        found = net.execute(
            "nation", "SELECT count(*) FROM public.technology WHERE id = ANY(%s::uuid[])", (written,)
        )
        return found[0][0] == len(written)

    wait_for(all_arrived, "every row written during the leaves-first rollout at the nation", timeout=60)
    assert not _down(net)
    assert_in_sync(directory)


def test_a_half_rolled_out_network_blocks_one_edge_and_a_rollout_waits_and_stops_where_it_must(
    network: Any,
) -> None:
    net = network(EXAMPLE)
    directory = Path(net.dir)
    assert cli("apply", "-d", str(directory), "--auto-approve").exit_code == 0

    # A column added by hand at a middle tier: its districts may still send to it
    # (the extra column is nullable), but it sends a column the nation lacks.
    net.execute("region_east", "ALTER TABLE public.technology ADD COLUMN extra text")
    # Drift elsewhere: a disabled link at the blocked edge, a missing one at region_west.
    net.execute("nation", "SELECT pglogical.alter_subscription_disable(sub_name, true) FROM pglogical.subscription"
                " WHERE sub_name LIKE '%region_east%'")  # fmt: skip
    sub_west = net.execute("nation", "SELECT sub_name FROM pglogical.subscription WHERE sub_name LIKE '%region_west%'")
    net.execute("nation", "SELECT pglogical.drop_subscription(%s)", (sub_west[0][0],))

    plan = cli("plan", "-d", str(directory))
    assert plan.exit_code == 1, plan.output
    errors = [line for line in plan.stdout.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, plan.stdout
    assert "edge region_east -> nation" in errors[0] and "column extra" in errors[0], errors
    assert "table public.technology" in errors[0] and "fix: add it at nation" in errors[0]
    assert "holds back the actions of edge(s) region_east -> nation" in plan.stdout

    report, _ = _apply(net, directory)
    status = {(o.action.kind, o.action.node): o.status for o in report.outcomes}
    assert status[("alter_subscription", "nation")] is Status.BLOCKED, status
    assert status[("create_subscription", "nation")] is Status.DONE, status

    # The fix the message names: the column at the nation too, by a migration (top-down).
    _write(directory, "0001_extra.sql", "ALTER TABLE public.technology ADD COLUMN IF NOT EXISTS extra text;\n")
    # region_west does not answer the tool during this rollout: its subtree waits.
    unreachable = dict(load_desired_state(directory).nodes)
    unreachable["region_west"] = unreachable["region_west"].model_copy(
        update={"admin_dsn": "host=127.0.0.1 port=1 dbname=x user=postgres connect_timeout=2"}
    )
    state = load_desired_state(directory).model_copy(update={"nodes": unreachable})
    half = compute_plan(state, directory, timeout=3).plan
    assert set(half.migrations_waiting) == {"district_c", "district_d"}, half.migrations_waiting
    assert all("region_west" in why for why in half.migrations_waiting.values())
    ran = {a.node for a in half.actions if a.kind == "run_migration"}
    assert ran == {"nation", "region_east", "district_a", "district_b"}, ran
    report = apply_plan(state, directory, half, ApplyOptions(statement_timeout=30), lambda e: None)
    assert all(o.status is Status.DONE for o in report.outcomes if o.action.kind == "run_migration")
    # Status during the rollout: each node's migration level, and who the rest wait on.
    health = judge(state, read_network(state, timeout=3))
    assert health.release == "release 0001: 4 of 7 nodes; the rest wait on region_west (unreachable, 3 nodes)"
    assert health.schema_migrations == {n: 1 for n in ("nation", "region_east", "district_a", "district_b")} | {
        "district_c": 0,
        "district_d": 0,
    }
    metrics = render_prometheus(health, seconds=1.0, timestamp=0.0)
    assert 'reconcile_node_schema_migration{node="district_a"} 1.0' in metrics
    assert 'reconcile_node_schema_migration{node="district_c"} 0.0' in metrics
    assert "Schema: release 0001: 4 of 7 nodes" in render_status_text(health)

    # A migration failing on one node stops that subtree only and is reported.
    net.execute("region_east", "CREATE TABLE public.clash (id int)")
    _write(directory, "0002_clash.sql", "CREATE TABLE public.clash (id uuid PRIMARY KEY);\n")
    report, _ = _apply(net, directory)
    outcome = {
        (o.action.node, o.action.migration.name): o for o in report.outcomes if isinstance(o.action, RunMigration)
    }
    assert outcome[("region_east", "0002_clash")].status is Status.FAILED
    assert "already exists" in outcome[("region_east", "0002_clash")].detail
    for node in ("district_a", "district_b"):
        assert outcome[(node, "0002_clash")].status is Status.WAITING
        assert outcome[(node, "0002_clash")].waiting_on == "region_east"
    for node in ("nation", "region_west", "district_c", "district_d"):
        assert outcome[(node, "0002_clash")].status is Status.DONE, outcome
    assert outcome[("district_c", "0001_extra")].status is Status.DONE
    net.execute("region_east", "DROP TABLE public.clash")
    report, _ = _apply(net, directory)
    assert not report.failed, [(o.action.describe(), o.detail) for o in report.outcomes]
    wait_for(lambda: not _down(net), "every link up", timeout=30)
    assert_in_sync(directory)

    # A migration that ran, edited afterwards: a blocker naming every node it ran on.
    _write(directory, "0002_clash.sql", "CREATE TABLE public.clash (id uuid PRIMARY KEY, x int);\n")
    drift = cli("plan", "-d", str(directory))
    assert drift.exit_code == 1
    assert drift.stdout.count("migration 0002_clash changed after it ran on") == 7, drift.stdout
