"""max_slot_wal_keep_size in the plan, and a lost slot: plan proposes the fix, apply replaces it and repairs the rows."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from support import cli, plan_actions, wait_for

pytestmark = pytest.mark.server

SMALL = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}


def insert_approved(net: Any, node: str, rows: int = 1) -> list[str]:
    keys = [str(uuid.uuid4()) for _ in range(rows)]
    for key in keys:
        net.execute(
            node,
            "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'x', %s, true)",
            (key, node),
        )
    return keys


@pytest.fixture
def district_server(pg_servers: Any) -> Iterator[psycopg.Connection[Any]]:
    """Admin connection to the (shared) district server; its WAL limit is reset whatever happens."""
    admin = psycopg.connect(pg_servers.dsn(0), autocommit=True)
    try:
        yield admin
    finally:
        admin.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
        admin.execute("SELECT pg_reload_conf()")
        admin.close()


def test_declared_wal_keep_size_is_planned_once_per_server(
    network: Any, district_server: psycopg.Connection[Any]
) -> None:
    net = network(parents=SMALL)
    (net.dir / "settings.yaml").write_text("level_settings:\n  district:\n    max_slot_wal_keep_size: 64MB\n")
    planned = [a for a in plan_actions(net.dir) if a["kind"] == "set_wal_keep_size"]
    # d1 and d2 share the district server: one action, on the first of them.
    assert [(a["node"], a["before"], a["after"]) for a in planned] == [("d1", "-1", "64MB")]
    assert planned[0]["destructive"] is True  # a new limit can invalidate slots already past it
    held = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert held.exit_code == 0, held.output
    assert "held back (needs --allow-destroy): d1: ~ server setting max_slot_wal_keep_size" in held.output
    assert district_server.execute("SHOW max_slot_wal_keep_size").fetchone() == ("-1",)
    result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-destroy")
    assert result.exit_code == 0, result.output
    assert district_server.execute("SHOW max_slot_wal_keep_size").fetchone() == ("64MB",)
    assert cli("plan", "-d", str(net.dir), "--detailed-exitcode").exit_code == 0


def test_lost_slot_is_replaced_and_verify_repair_restores_the_rows(
    network: Any, district_server: psycopg.Connection[Any]
) -> None:
    net = network(parents=SMALL)
    result = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert result.exit_code == 0, result.output
    before = insert_approved(net, "d1")
    wait_for(
        lambda: (
            net.execute("nation", "SELECT count(*) FROM public.technology WHERE id = %s", (before[0],))[0][0]
            == 1
        ),
        "the first row at the nation",
    )
    # The region goes away (its subscription stops consuming) while d1 writes on.
    net.execute("region", "SELECT pglogical.alter_subscription_disable('region_from_d1', true)")
    during = insert_approved(net, "d1", rows=3)
    district_server.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
    district_server.execute("SELECT pg_reload_conf()")

    def lost() -> bool:
        for _ in range(3):
            district_server.execute("SELECT pg_switch_wal()")
            insert_approved(net, "d2")
        district_server.execute("CHECKPOINT")
        rows = net.execute(
            "d1", "SELECT wal_status FROM pg_replication_slots WHERE database = current_database()"
        )
        return [r[0] for r in rows] == ["lost"]

    wait_for(lost, "d1's slot to be invalidated", timeout=60)
    district_server.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
    district_server.execute("SELECT pg_reload_conf()")

    # The region comes back: status names the lost slot and the re-copy, not a mere restart.
    net.execute("region", "SELECT pglogical.alter_subscription_enable('region_from_d1', true)")

    def region_from_d1() -> dict[str, Any]:
        result = cli("status", "-d", str(net.dir), "--no-drift", "--format", "json", "--timeout", "5")
        document = json.loads(result.stdout)
        return next(e for e in document["edges"] if e["subscription"] == "region_from_d1")

    wait_for(lambda: region_from_d1()["cause"] == "slot_lost", "status naming the lost slot", timeout=30)
    found = region_from_d1()
    assert "is lost (past max_slot_wal_keep_size)" in found["reason"], found
    assert found["remedy"].startswith("re-copy needed: `reconcile apply --allow-destroy` replaces"), found

    planned = plan_actions(net.dir)
    # d1's slot is lost; d2's may be too (1MB is less than its walsender's lag at times).
    replace = {a["after"]["name"]: a for a in planned if a["kind"] == "replace_subscription"}
    assert {a["node"] for a in replace.values()} == {"region"}, planned
    assert "region_from_d1" in replace, planned
    assert "is lost (past max_slot_wal_keep_size): re-copy needed" in replace["region_from_d1"]["description"]
    assert replace["region_from_d1"]["data_movement"] == "resync_needed"

    held = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert "held back (needs --allow-destroy)" in held.output
    applied = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-destroy")
    assert applied.exit_code == 0, applied.output
    # The replace copies nothing: apply itself verifies and repairs the outage's rows.
    assert "converged: catalogs and rows" in applied.output, applied.output
    assert re.search(
        r"rows: verified \d+ table\(s\) on 2 subscriber\(s\), [1-9]\d* row\(s\) repaired", applied.output
    ), applied.output
    assert cli("plan", "-d", str(net.dir), "--detailed-exitcode").exit_code == 0

    # New writes flow again; nothing is left for verify to find.
    after = insert_approved(net, "d1")
    wait_for(
        lambda: (
            net.execute("nation", "SELECT count(*) FROM public.technology WHERE id = %s", (after[0],))[0][0]
            == 1
        ),
        "a row written after the repair at the nation",
    )
    for key in before + during + after:
        for node in ("region", "nation"):
            wait_for(
                lambda n=node, k=key: (
                    net.execute(n, "SELECT count(*) FROM public.technology WHERE id = %s", (k,))[0][0] == 1
                ),
                f"row {key} at {node}",
            )
    assert cli("verify", "-d", str(net.dir)).exit_code == 0
