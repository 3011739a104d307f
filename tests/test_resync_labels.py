"""Labels that tell the truth on real servers: a table re-added where the subscriber already marks it synced."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from support import cli, plan_actions, wait_for

pytestmark = pytest.mark.server

SMALL = {"nation": None, "region": "nation", "d1": "region"}
TECH = "public.technology"


def count(net: Any, node: str, key: str) -> int:
    rows = net.execute(node, "SELECT count(*) FROM public.technology WHERE id = %s", (key,))
    return int(rows[0][0])


def insert_approved(net: Any, node: str) -> str:
    key = str(uuid.uuid4())
    net.execute(
        node,
        "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'x', %s, true)",
        (key, node),
    )
    return key


def test_table_readded_to_a_set_is_labelled_needs_verify_not_initial_copy(network: Any) -> None:
    net = network(parents=SMALL)
    assert cli("apply", "-d", str(net.dir), "--auto-approve").exit_code == 0
    first = insert_approved(net, "d1")
    wait_for(lambda: count(net, "region", first) == 1, "the first row at the region")

    # By hand on the district: the table leaves the set, and a row is written meanwhile.
    net.execute("d1", "SELECT pglogical.replication_set_remove_table('approved', %s)", (TECH,))
    missed = insert_approved(net, "d1")

    adds = [a for a in plan_actions(net.dir) if a["kind"] == "add_table"]
    assert [(a["node"], a["table"], a["synced_at"]) for a in adds] == [("d1", TECH, ["region"])], adds
    # pglogical skips a queued sync of a table the subscriber marks synced: no copy runs.
    assert adds[0]["data_movement"] == "resync_needed"
    text = cli("plan", "-d", str(net.dir)).output
    line = next(x for x in text.splitlines() if f"table {TECH} in set approved" in x)
    assert "[needs verify]" in line and "[initial copy]" not in line, text
    assert "no copy to region" in line

    # --no-repair: what pglogical itself does is checked here (apply's own
    # repair of [needs verify] tables is tests/test_apply_live.py's).
    applied = cli("apply", "-d", str(net.dir), "--auto-approve", "--no-repair")
    assert applied.exit_code == 0, applied.output
    assert "rows: NOT verified (--no-repair)" in applied.output, applied.output
    # The catalogs converged; the rows are owed until verified (reconcile.pending_rows).
    owed = cli("plan", "-d", str(net.dir), "--detailed-exitcode")
    assert owed.exit_code == 2 and "region: public.approach, public.technology" not in owed.output, (
        owed.output
    )
    assert "Rows still owed" in owed.output and "region: public.technology" in owed.output, owed.output
    # The label is right: changes flow again (a later row arrives, so the
    # queued sync was seen), but the row written meanwhile was never copied.
    later = insert_approved(net, "d1")
    wait_for(lambda: count(net, "region", later) == 1, "a row written after the re-add at the region")
    assert count(net, "region", missed) == 0
    # verify finds it and --repair brings it.
    assert cli("verify", "-d", str(net.dir)).exit_code == 2
    assert cli("verify", "-d", str(net.dir), "--repair").exit_code == 0
    wait_for(lambda: count(net, "nation", missed) == 1, "the missed row at the nation after repair")
    # verify --repair found the table whole: nothing is owed any more.
    assert cli("plan", "-d", str(net.dir), "--detailed-exitcode").exit_code == 0
