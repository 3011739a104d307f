"""Onboarding a site that already holds data, on real servers: its approved rows travel in batches,
a link cut half-way through leaves the rest owed, and the next apply resumes without re-sending.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql
from support import cli, wait_for

pytestmark = pytest.mark.server

SHAPE = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}
ROWS, APPROVED_EVERY = 10_000, 10  # 3 of every 10 approved: 30 %


def _apply(net: Any) -> Any:
    return cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty", "--allow-destroy")


def _d2_keys(net: Any, node: str, where: str = "true") -> set[str]:
    return {
        r[0]
        for r in net.execute(
            node, f"SELECT id::text FROM public.technology WHERE district = 'd2' AND {where}"
        )
    }


def _allow_connections(net: Any, node: str, allowed: bool) -> None:
    """The link to `node` dies (every open connection to its database closed, no new one) or comes back."""
    info = psycopg.conninfo.conninfo_to_dict(net.dsn(node))
    dbname = str(info["dbname"])
    with psycopg.connect(
        psycopg.conninfo.make_conninfo(**(info | {"dbname": "postgres"})), autocommit=True
    ) as server:
        server.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(dbname), sql.SQL("true" if allowed else "false")
            )
        )
        if not allowed:
            server.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,)
            )


def test_onboarding_a_district_with_data_resumes_after_a_cut_link_and_sends_nothing_twice(
    network: Any,
) -> None:
    net = network(SHAPE)
    topology = net.dir / "topology.yaml"
    declared = topology.read_text()
    # d2 ran on its own: not declared yet, 10,000 rows of its own, 30 % approved.
    topology.write_text(re.sub(r"\n  d2:\n(?:    .*\n)*", "\n", declared))
    assert _apply(net).exit_code == 0
    net.execute(
        "d1",
        "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'd1 row', 'd1', true)",
        (str(uuid.uuid4()),),
    )
    wait_for(
        lambda: bool(net.execute("nation", "SELECT count(*) FROM public.technology")[0][0]), "d1's row up"
    )
    net.execute(
        "d2",
        "INSERT INTO public.technology (id, title, district, approved)"
        " SELECT gen_random_uuid(), 'own ' || i, 'd2', i %% %s < 3 FROM generate_series(1, %s) i",
        (APPROVED_EVERY, ROWS),
    )
    approved = _d2_keys(net, "d2", "approved")
    assert len(approved) == ROWS * 3 // APPROVED_EVERY
    # A slow link: each row the repair writes at the region takes a millisecond.
    net.execute(
        "region",
        "CREATE FUNCTION public.slow_link() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN PERFORM pg_sleep(0.001); RETURN NEW; END$$",
    )
    net.execute(
        "region",
        "CREATE TRIGGER slow_link BEFORE INSERT ON public.technology FOR EACH ROW EXECUTE FUNCTION public.slow_link()",
    )
    topology.write_text(declared)
    plan = cli("plan", "-d", str(net.dir))
    assert "[needs verify]" in plan.output, plan.output

    # Cut d2 once the region has about a third of its approved rows.
    cut_at: list[int] = []

    def cutter() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            held = len(_d2_keys(net, "region"))
            if held >= len(approved) // 3:
                _allow_connections(net, "d2", False)
                cut_at.append(held)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=cutter, daemon=True)
    thread.start()
    first = _apply(net)
    thread.join(timeout=130)
    try:
        assert cut_at, first.output
        assert first.exit_code == 1, first.output
        copied = len(_d2_keys(net, "region"))
        assert 0 < copied < len(approved), first.output
        # The region keeps the table as owed, with the repair's progress; status says so.
        owed = net.execute(
            "region", "SELECT table_name, rows_to_copy, rows_copied FROM reconcile.pending_rows"
        )
        assert [r[0] for r in owed] == ["public.technology"], owed
        assert owed[0][1] == len(approved) and 0 < owed[0][2] < len(approved), owed
        status = cli("status", "-d", str(net.dir), "--format", "json")
        assert '"pending_rows"' in status.output and "owes rows of public.technology" in status.output, (
            status.output
        )
        # The catalogs converged before the cut: what is left is rows, and the plan says so.
        again = cli("plan", "-d", str(net.dir), "--detailed-exitcode")
        assert "Rows still owed" in again.output and "region: public.technology" in again.output, again.output
    finally:
        _allow_connections(net, "d2", True)
    second = _apply(net)
    assert second.exit_code == 0, second.output
    # Only what had not arrived was copied again (key-range hashes first).
    remaining = len(approved) - copied
    assert re.search(rf"public\.technology: [\d,]+ of {remaining:,} rows", second.output), second.output
    assert _d2_keys(net, "region") == approved
    wait_for(lambda: _d2_keys(net, "nation") == approved, "d2's approved rows at the nation", 60)
    assert not net.execute("region", "SELECT * FROM reconcile.pending_rows")
    assert cli("verify", "-d", str(net.dir)).exit_code == 0
    assert cli("plan", "-d", str(net.dir), "--detailed-exitcode").exit_code == 0


def test_a_hostile_pending_rows_table_never_makes_a_node_unreadable(network: Any) -> None:
    """Anyone who may write reconcile.pending_rows may write anything there: plan and status
    read only declared names, finite times and clamped counts, and stay bounded."""
    net = network({"nation": None, "region": "nation", "d1": "region"})
    assert _apply(net).exit_code == 0
    from reconciler import pending_rows

    with psycopg.connect(net.dsn("region"), autocommit=True) as conn:
        pending_rows.record(conn, ["public.technology"], "x" * 10_000)
        conn.execute(
            "INSERT INTO reconcile.pending_rows (table_name, because, since, rows_to_copy, rows_copied)"
            " VALUES (%s, %s, 'infinity', -5, 99999999999999999), (%s, 'ok', now(), 1, 1)",
            ("public.\ufffe\x1b[31mred", "\ufffe" * 1000, "no_such.table"),
        )
        conn.execute("UPDATE reconcile.pending_rows SET since = 'infinity', updated_at = '-infinity'")
    plan = cli("plan", "-d", str(net.dir), "--format", "json", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.output
    assert json.loads(plan.stdout)["pending_rows"] == {"region": ["public.technology"]}, plan.output
    status = cli("status", "-d", str(net.dir))
    assert "unreadable" not in status.output and "\x1b[31m" not in status.output, status.output
    assert "owes rows of public.technology since an unknown time" in status.output, status.output
    assert "no_such.table" not in status.output
    # The next apply verifies the table, finds it whole, and the record goes (the others, not
    # declared, are left alone and never read).
    assert _apply(net).exit_code == 0
    assert cli("plan", "-d", str(net.dir), "--detailed-exitcode").exit_code == 0
