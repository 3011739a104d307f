"""Broken links on real servers: status names the cause and the fix, and one apply restarts the link."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler.sandbox_server import ensure_server, stop_server
from tests.support import cli, plan_actions, wait_for

pytestmark = pytest.mark.server

CHAIN = {"nation": None, "region": "nation", "d1": "region"}
GRACE = 1.0  # monitoring.restart_after_seconds for these tests


def with_grace(net: Any) -> None:
    """monitoring.restart_after_seconds = GRACE, where the network's files keep `monitoring:` (or a file of it)."""
    yaml = YAML(typ="safe")
    for path in sorted(Path(net.dir).glob("*.yaml")):
        data = yaml.load(path.read_text())
        if "monitoring" in data:
            data["monitoring"]["restart_after_seconds"] = GRACE
            with path.open("w") as out:
                yaml.dump(data, out)
            return
    # The example keeps `monitoring:` in a file of its own, which test networks do not copy.
    (Path(net.dir) / "monitoring.yaml").write_text(f"monitoring:\n  restart_after_seconds: {GRACE}\n")


def status(net: Any) -> dict[str, Any]:
    result = cli("status", "-d", str(net.dir), "--no-drift", "--format", "json", "--timeout", "5")
    assert result.exit_code in (0, 2, 3), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def edge(document: dict[str, Any], subscriber: str) -> dict[str, Any]:
    return next(e for e in document["edges"] if e["subscriber"] == subscriber)


def sub_status(net: Any, node: str) -> str:
    rows = net.execute(node, "SELECT status FROM pglogical.show_subscription_status()")
    return str(rows[0][0]) if rows else "missing"


def insert(net: Any, node: str, **extra: str) -> str:
    key = str(uuid.uuid4())
    columns = ", ".join(["id", "title", "district", "approved", *extra])
    values = ", ".join(["%s"] * (4 + len(extra)))
    net.execute(
        node,
        f"INSERT INTO public.technology ({columns}) VALUES ({values})",  # test-only, fixed names
        (key, "cause test", node, True, *extra.values()),
    )
    return key


def arrived(net: Any, node: str, key: str) -> bool:
    return bool(net.execute(node, "SELECT count(*) FROM public.technology WHERE id = %s", (key,))[0][0])


def applied(net: Any) -> None:
    result = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert result.exit_code == 0, result.output


def test_a_column_added_below_is_named_with_its_fix_and_one_apply_brings_both_tiers_back(
    network: Any,
) -> None:
    """Leaf -> middle (extra at d1) and middle -> top (extra2 at region), both at once."""
    net = network(CHAIN)
    with_grace(net)
    applied(net)
    wait_for(lambda: sub_status(net, "region") == sub_status(net, "nation") == "replicating", "replicating")
    net.execute("d1", "ALTER TABLE public.technology ADD COLUMN extra text")
    net.execute("region", "ALTER TABLE public.technology ADD COLUMN extra2 text")
    from_leaf = insert(net, "d1", extra="e")
    from_middle = insert(net, "region", extra2="e2")
    wait_for(lambda: sub_status(net, "region") == sub_status(net, "nation") == "down", "both links down")

    document = status(net)
    region, nation = edge(document, "region"), edge(document, "nation")
    assert region["cause"] == nation["cause"] == "schema_mismatch", document["edges"]
    assert "public.technology.extra" in region["reason"] and "unknown column name extra" in region["reason"]
    assert region["remedy"].startswith("add column extra text to public.technology at nation, then region")
    assert nation["remedy"].startswith("add column extra2 text to public.technology at nation")
    text = cli("status", "-d", str(net.dir), "--no-drift").stdout
    assert "cause: schema_mismatch" in text and "remedy: add column extra text" in text
    assert "schema mismatch" in cli("graph", "-d", str(net.dir), "--live").stdout

    # The fix, by hand, top-down; then one apply restarts both links.
    # (d1 gets extra2 as well: preflight wants the same columns on both ends of an edge.)
    for node, column in (("nation", "extra"), ("nation", "extra2"), ("region", "extra"), ("d1", "extra2")):
        net.execute(node, f"ALTER TABLE public.technology ADD COLUMN {column} text")  # test-only names
    time.sleep(GRACE)
    kinds = {(a["kind"], a["node"]) for a in plan_actions(net.dir)}
    assert {("restart_subscription", "region"), ("restart_subscription", "nation")} <= kinds, kinds
    started = time.monotonic()
    applied(net)
    wait_for(
        lambda: arrived(net, "nation", from_leaf) and arrived(net, "nation", from_middle),
        "rows at the top",
        30,
    )
    print(f"\ncolumn fixed top-down: rows at the top {time.monotonic() - started:.1f} s after apply started")
    assert status(net)["level"] == "ok"


def test_after_a_provider_restart_one_apply_brings_the_link_back(network: Any, pg_servers: Any) -> None:
    net = network({"region": None, "d1": "region"}, levels=("district", "region"))
    with_grace(net)
    applied(net)
    wait_for(lambda: sub_status(net, "region") == "replicating", "replicating")
    pgdata = pg_servers.data_dir / str(pg_servers.port(0))  # d1's server
    net.close()
    stop_server(pgdata)
    try:
        wait_for(lambda: sub_status(net, "region") == "down", "the link down while d1 is stopped")
        document = status(net)
        assert edge(document, "region")["cause"] == "provider_unreachable", document["edges"]
        # Past pglogical's first retry (5 s after the failure): from then on it waits 180 s.
        time.sleep(6)
    finally:
        ensure_server(pg_servers.port(0), pgdata)
    key = insert(net, "d1")
    time.sleep(GRACE)
    assert sub_status(net, "region") == "down"  # pglogical waits for its next wake-up
    # Under load the reading may come before the grace is over: poll, bounded.
    wait_for(
        lambda: edge(status(net), "region")["remedy"].startswith("restart: `reconcile apply` restarts it"),
        "the restart remedy",
        30,
    )
    started = time.monotonic()
    applied(net)
    wait_for(lambda: arrived(net, "region", key), "the row written after the restart", 30)
    print(f"\nprovider restarted: the link replicates {time.monotonic() - started:.1f} s after apply started")


def test_a_role_that_cannot_read_the_server_log_gets_a_cause_not_a_crash(network: Any) -> None:
    """The subscriber read by a role without the log functions: status says so, and skip asks for --lsn."""
    net = network({"region": None, "d1": "region"}, levels=("district", "region"))
    applied(net)
    wait_for(lambda: sub_status(net, "region") == "replicating", "replicating")
    # A transaction the region can never apply: its worker stays down.
    net.execute("region", "ALTER TABLE public.technology ADD CONSTRAINT no_poison CHECK (title <> 'poison')")
    net.execute(
        "d1",
        "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'poison', 'd1', true)",
        (str(uuid.uuid4()),),
    )
    wait_for(lambda: sub_status(net, "region") == "down", "the link down")
    role = f"nolog_{uuid.uuid4().hex[:8]}"  # roles are server-wide: one of its own
    net.execute("region", f"CREATE ROLE {role} LOGIN IN ROLE pg_monitor")  # test-only name
    try:
        for grant in (
            f"GRANT USAGE ON SCHEMA pglogical, reconcile TO {role}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA pglogical, reconcile TO {role}",
        ):
            net.execute("region", grant)
        topology = Path(net.dir) / "topology.yaml"
        yaml = YAML(typ="safe")
        data = yaml.load(topology.read_text())
        data["nodes"]["region"]["dsn"] = net.dsn("region").replace("user=postgres", f"user={role}")
        with topology.open("w") as out:
            yaml.dump(data, out)

        region = edge(status(net), "region")
        assert region["cause"] == "unknown", region
        assert region["reason"].startswith(f"unknown: cannot read the server log: role {role} may not call")
        assert "server log" in region["remedy"]
        refused = cli("skip", "region", "d1", "-d", str(net.dir), "--auto-approve", "--timeout", "5")
        assert refused.exit_code == 1, refused.output
        assert "pass --lsn" in refused.output and "Traceback" not in refused.output
    finally:
        net.close()  # the role's sessions: none of the tool's outlive a command
        net.execute("region", f"DROP OWNED BY {role}")
        net.execute("region", f"DROP ROLE {role}")


@pytest.mark.parametrize("engine", ["pglogical", "native"])
def test_a_table_stuck_in_its_initial_copy_is_named(network: Any, engine: str) -> None:
    """The subscriber's table is locked against writes while the subscription copies it: status names it."""
    net = network({"region": None, "d1": "region"}, levels=("district", "region"))
    if engine == "native":
        topology = Path(net.dir) / "topology.yaml"
        yaml = YAML(typ="safe")
        data = yaml.load(topology.read_text())
        data["engine"] = "native"
        with topology.open("w") as out:
            yaml.dump(data, out)
    applied(net)
    key = insert(net, "d1")
    wait_for(lambda: arrived(net, "region", key), "replicating")
    # The subscription goes (bounded: pglogical waits for its worker without
    # limit) and the region's copy of the rows with it: the next apply creates
    # it again, and its initial copy is what gets stuck.
    net.execute("region", "SET statement_timeout = '20s'")
    if engine == "native":
        net.execute("region", "DROP SUBSCRIPTION region_from_d1")
    else:
        net.execute("region", "SELECT pglogical.drop_subscription('region_from_d1')")
    net.execute("region", "DELETE FROM public.technology")
    # SHARE blocks the copy's inserts but not the reads of plan and status.
    blocker = net.connect("region")
    blocker.autocommit = False
    blocker.execute("LOCK TABLE public.technology IN SHARE MODE")
    try:
        result = cli("apply", "-d", str(net.dir), "--auto-approve", "--no-repair")
        assert result.exit_code == 0, result.output

        # pglogical copies every table of the sets in one initial copy and
        # keeps no per-table state until it ends; native copies per table.
        named = "public.technology" if engine == "native" else "the initial copy of sets {approved}"

        def stuck() -> bool:
            found = edge(status(net), "region")
            reason = found["reason"] or ""
            return (
                found["cause"] == "tables_not_ready" and named in reason and "public.approach" not in reason
            )

        wait_for(stuck, "status naming the table stuck in its copy", 30)
        found = edge(status(net), "region")
        assert found["status"] == "initializing", (found["status"], found["reason"])
        assert "waiting for a lock" in found["reason"], found["reason"]
        assert found["remedy"].startswith("wait for their initial copy"), found["remedy"]
    finally:
        blocker.rollback()
    wait_for(lambda: edge(status(net), "region")["cause"] is None, "the copy finishing once the lock is gone")
