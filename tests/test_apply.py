"""`reconcile apply` against real pglogical servers: converge, lock, resume after SIGKILL, refuse stale plans."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import git
import pytest
from support import assert_in_sync, cli, wait_for
from typer.testing import Result

from reconciler.apply.locks import APPLY_LOCK_KEY
from reconciler.inspect.filter_cache import FILE_NAME

pytestmark = pytest.mark.server

SMALL = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}


def plan_json(directory: Path) -> dict[str, Any]:
    result = cli("plan", "-d", str(directory), "--format", "json")
    assert result.exit_code in (0, 2), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def apply_ok(directory: Path, *extra: str) -> Result:
    result = cli("apply", "-d", str(directory), "--auto-approve", *extra)
    assert result.exit_code == 0, result.output
    assert "converged" in result.output
    return result


def insert_technology(net: Any, node: str, approved: bool) -> str:
    key = str(uuid.uuid4())
    net.execute(
        node,
        "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, %s, %s, %s)",
        (key, f"tech from {node}", node, approved),
    )
    return key


def has_row(net: Any, node: str, table: str, key: str) -> bool:
    rows = net.execute(node, f"SELECT count(*) FROM {table} WHERE id = %s", (key,))
    return bool(rows[0][0])


def test_example_converges_and_approved_rows_reach_the_nation(network: Any) -> None:
    net = network()
    first = cli("plan", "-d", str(net.dir), "--detailed-exitcode")
    assert first.exit_code == 2, first.output
    assert "Plan: " in first.stdout
    apply_ok(net.dir)
    assert_in_sync(net.dir)

    approved = {
        d: insert_technology(net, d, True) for d in ("district_a", "district_b", "district_c", "district_d")
    }
    drafts = {d: insert_technology(net, d, False) for d in ("district_a", "district_c")}
    wait_for(
        lambda: all(has_row(net, "nation", "public.technology", k) for k in approved.values()),
        "approved rows of all four districts at the nation",
    )
    assert has_row(net, "region_east", "public.technology", approved["district_a"])
    assert not has_row(net, "region_west", "public.technology", approved["district_a"])
    for key in drafts.values():
        assert not has_row(net, "region_east", "public.technology", key)
        assert not has_row(net, "region_west", "public.technology", key)
        assert not has_row(net, "nation", "public.technology", key)

    # Column list: internal_note stays at the district.
    key = str(uuid.uuid4())
    net.execute(
        "district_b",
        "INSERT INTO public.approach (id, title, status, district, internal_note)"
        " VALUES (%s, 'terraces', 'approved', 'district_b', 'secret note')",
        (key,),
    )
    wait_for(lambda: has_row(net, "nation", "public.approach", key), "approach row at the nation")
    assert net.execute("nation", "SELECT internal_note FROM public.approach WHERE id = %s", (key,)) == [
        (None,)
    ]


def test_four_levels_converge(network: Any) -> None:
    net = network(
        parents={"federal": None, "amhara": "federal", "gondar": "amhara", "dabat": "gondar"},
        levels=("woreda", "zone", "region", "federal"),
    )
    apply_ok(net.dir)
    assert_in_sync(net.dir)
    key = insert_technology(net, "dabat", True)
    wait_for(lambda: has_row(net, "federal", "public.technology", key), "woreda row at federal level")


def test_second_apply_fails_fast_naming_the_lock_holder(network: Any) -> None:
    net = network(parents=SMALL)
    holder = net.connect("d1")
    holder.execute("SET application_name = 'the other apply'")
    holder.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
    started = time.monotonic()
    result = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert result.exit_code == 1, result.output
    assert time.monotonic() - started < 30
    assert "node d1: another apply holds the lock: 'the other apply'" in result.output
    # Nothing was done anywhere: the lock is taken before any action runs.
    assert net.execute("region", "SELECT count(*) FROM pglogical.local_node") == [(0,)]
    holder.execute("SELECT pg_advisory_unlock(%s)", (APPLY_LOCK_KEY,))


def test_lock_timeout_waits_for_the_other_apply(network: Any) -> None:
    net = network(parents=SMALL)
    holder = net.connect("d2")
    holder.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
    timer = threading.Timer(2.0, lambda: holder.execute("SELECT pg_advisory_unlock(%s)", (APPLY_LOCK_KEY,)))
    timer.start()
    try:
        apply_ok(net.dir, "--lock-timeout", "30")
    finally:
        timer.join()
    assert_in_sync(net.dir)


@pytest.mark.parametrize("kill_after", [1, 4, 9])
def test_apply_killed_with_sigkill_is_completed_by_the_next_run(network: Any, kill_after: int) -> None:
    net = network(parents=SMALL)
    # The kill comes from outside the package: a driver whose progress callback kills its own process.
    killed = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "apply_killed.py"), str(net.dir), str(kill_after)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr
    middle = plan_json(net.dir)
    assert middle["actions"], "the killed apply should have left work to do"
    # The killed apply left its record, marked as never completed, on the node it started on.
    assert net.execute("d1", "SELECT result FROM reconcile.apply_log") == [("running",)]
    apply_ok(net.dir)
    assert_in_sync(net.dir)
    assert net.execute("d1", "SELECT result FROM reconcile.apply_log ORDER BY id") == [("running",), ("ok",)]


def test_stale_saved_plan_is_refused_then_a_fresh_plan_applies(network: Any, tmp_path: Path) -> None:
    net = network(parents=SMALL)
    saved = tmp_path / "plan.json"
    made = cli("plan", "-d", str(net.dir), "-o", str(saved))
    assert made.exit_code == 0, made.output
    # A hand change on d2 after the plan was made.
    net.execute("d2", "SELECT pglogical.create_node('d2', %s)", (net.dsn("d2"),))
    stale = cli("apply", "-d", str(net.dir), str(saved))
    assert stale.exit_code == 1, stale.output
    assert "live state changed since the plan was made on node(s) d2" in stale.output
    assert net.execute("d1", "SELECT count(*) FROM pglogical.local_node") == [(0,)]
    fresh = tmp_path / "fresh.json"
    assert cli("plan", "-d", str(net.dir), "-o", str(fresh)).exit_code == 0
    result = cli("apply", "-d", str(net.dir), str(fresh))
    assert result.exit_code == 0, result.output
    assert_in_sync(net.dir)


def test_destroys_are_held_back_without_allow_destroy(network: Any) -> None:
    net = network(parents=SMALL)
    apply_ok(net.dir)
    net.execute("d1", "SELECT pglogical.create_replication_set('handmade')")
    held = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert held.exit_code == 0, held.output
    assert "held back (needs --allow-destroy): d1: - replication set handmade" in held.output
    assert net.execute(
        "d1", "SELECT count(*) FROM pglogical.replication_set WHERE set_name = 'handmade'"
    ) == [(1,)]
    apply_ok(net.dir, "--allow-destroy")
    assert net.execute(
        "d1", "SELECT count(*) FROM pglogical.replication_set WHERE set_name = 'handmade'"
    ) == [(0,)]
    assert_in_sync(net.dir)


def test_apply_refuses_a_dirty_repository(network: Any) -> None:
    net = network(parents=SMALL)
    repo = git.Repo.init(net.dir)
    repo.index.add([p.name for p in sorted(net.dir.glob("*.yaml"))])
    repo.index.commit("desired state")
    (net.dir / "topology.yaml").write_text((net.dir / "topology.yaml").read_text() + "\n# edited\n")
    result = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert result.exit_code == 1, result.output
    assert "uncommitted changes: topology.yaml" in result.output
    assert net.execute("d1", "SELECT count(*) FROM pglogical.local_node") == [(0,)]
    apply_ok(net.dir, "--allow-dirty")
    records = net.execute("d1", "SELECT desired_commit, result FROM reconcile.apply_log")
    assert records == [(f"{repo.head.commit.hexsha} (dirty)", "ok")]


def test_apply_outside_git_warns_and_the_record_says_so(network: Any) -> None:
    net = network(parents=SMALL)  # the fixture's directory lies under tmp_path, in no repository
    warned = apply_ok(net.dir)
    assert "is in no git repository" in warned.stderr and "--allow-no-git" in warned.stderr
    assert net.execute("d1", "SELECT desired_commit, result FROM reconcile.apply_log") == [("not in git", "ok")]
    status = cli("status", "-d", str(net.dir))
    assert "(ok, not in git)" in status.stdout, status.output
    quiet = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-no-git")
    assert quiet.exit_code == 0, quiet.output
    assert "git" not in quiet.stderr
    # A directory in a repository gets no such warning.
    repo = git.Repo.init(net.dir)
    repo.index.add([p.name for p in sorted(net.dir.glob("*.yaml"))])
    repo.index.commit("desired state")
    assert "git repository" not in cli("apply", "-d", str(net.dir), "--auto-approve").stderr


def test_apply_record_and_no_password_anywhere(network: Any, tmp_path: Path, filter_cache_dir: Path) -> None:
    net = network(parents=SMALL)
    secret = "s3cret-Pa55word"
    env = {"PGPASSWORD": secret}
    saved = tmp_path / "plan.json"
    planned = cli("plan", "-d", str(net.dir), "-o", str(saved), env=env)
    applied = cli("apply", "-d", str(net.dir), str(saved), env=env)
    assert applied.exit_code == 0, applied.output
    cache = (filter_cache_dir / FILE_NAME).read_text()  # normalised filters remembered by the plan
    for text in (planned.output, applied.output, saved.read_text(), cache):
        assert secret not in text
    for node in SMALL:
        rows = net.execute(
            node, "SELECT os_user, tool_version, result, actions::text FROM reconcile.apply_log"
        )
        assert len(rows) == 1
        os_user, version, outcome, actions = rows[0]
        assert os_user and version and outcome == "ok"
        assert secret not in actions
        assert json.loads(actions), f"{node} has an empty action list"


def test_lock_timeout_zero_does_not_wait(network: Any) -> None:
    net = network(parents=SMALL)
    holder = net.connect("d1")
    holder.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
    started = time.monotonic()
    result = cli("apply", "-d", str(net.dir), "--auto-approve", "--lock-timeout", "0")
    assert result.exit_code == 1, result.output
    assert "another apply holds the lock" in result.output
    assert time.monotonic() - started < 30


def test_saved_plan_from_another_commit_is_refused(network: Any, tmp_path: Path) -> None:
    net = network(parents=SMALL)
    repo = git.Repo.init(net.dir)
    repo.index.add([p.name for p in sorted(net.dir.glob("*.yaml"))])
    repo.index.commit("desired state")
    saved = tmp_path / "plan.json"
    assert cli("plan", "-d", str(net.dir), "-o", str(saved)).exit_code == 0
    (net.dir / "topology.yaml").write_text((net.dir / "topology.yaml").read_text() + "\n# reviewed\n")
    repo.index.add(["topology.yaml"])
    repo.index.commit("a later change")
    result = cli("apply", "-d", str(net.dir), str(saved))
    assert result.exit_code == 1, result.output
    assert "the saved plan was made from desired-state commit" in result.output
    assert net.execute("d1", "SELECT count(*) FROM pglogical.local_node") == [(0,)]
