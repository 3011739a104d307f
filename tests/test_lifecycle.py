"""The approval lifecycle end to end on real servers: what pglogical delivers alone, what verify finds, what --repair fixes.

Parametrised over both engines: with `engine: native` (PostgreSQL 15 row
filters turn an approval into an INSERT and a withdrawal into a DELETE
upstream) every level holds exactly the approved rows on its own, verify
finds nothing and no repair runs.

Topology: nation <- region <- d1, d2. Every case is a change at a district;
the test states what region and nation must hold afterwards (the approved
rows, compared columns only), asserts what pglogical's row filter delivers
on its own (wrong for approving and withdrawing: REPLICATION-NOTES "Row
filters lose data"), then runs `reconcile verify` (finds them, exit 2) and
`verify --repair` (every level holds exactly the expected rows, exit 0).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from test_native import subscriptions_ready, use_engine
from typer.testing import CliRunner, Result

from reconciler.cli import app

pytestmark = pytest.mark.server

SMALL = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}
UPPER = ("region", "nation")
SETTLE_SECONDS = 30.0

TECH_COLUMNS = "id::text, title, description, district, approved, updated_at"
# Only the declared column list travels; internal_note stays at the district.
APPROACH_COLUMNS = "id::text, title, status, district, updated_at"


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def all_replicating(net: Any) -> bool:
    if net.state.engine == "native":
        return all(subscriptions_ready(net, node) for node in UPPER)
    for node in UPPER:
        rows = net.execute(node, "SELECT status FROM pglogical.show_subscription_status()")
        if not rows or any(status != "replicating" for (status,) in rows):
            return False
    return True


def settle(net: Any) -> None:
    """Wait (bounded) until each provider's slots confirmed its current WAL: districts first, then the region.

    Polls this database's own slots: pglogical.wait_slot_confirm_lsn(NULL, NULL)
    looks at every slot of the server, including other test networks' ones.
    """
    for node in ("d1", "d2", "region"):
        target = net.execute(node, "SELECT pg_current_wal_insert_lsn()")[0][0]
        wait_for(
            lambda node=node, target=target: net.execute(
                node,
                "SELECT COALESCE(bool_and(confirmed_flush_lsn >= %s), true) FROM pg_replication_slots"
                " WHERE database = current_database()",
                (target,),
            )[0][0],
            f"replication from {node} to catch up",
            timeout=SETTLE_SECONDS,
        )


def rows(net: Any, node: str, table: str, columns: str, where: str = "true") -> dict[str, tuple[Any, ...]]:
    found = net.execute(node, f"SELECT {columns} FROM {table} WHERE {where} ORDER BY id")
    return {r[0]: tuple(r) for r in found}


def verify(net: Any, *extra: str) -> tuple[int, dict[str, Any]]:
    result = cli("verify", "-d", str(net.dir), "--format", "json", *extra)
    assert result.exit_code in (0, 2), result.output
    return result.exit_code, json.loads(result.stdout)


def found(document: dict[str, Any], subscriber: str, table: str) -> dict[str, Any]:
    for entry in document["tables"]:
        if entry["subscriber"] == subscriber and entry["table"] == table:
            return entry
    raise AssertionError(f"no report for {table} at {subscriber}")


def edge(entry: dict[str, Any], provider: str) -> dict[str, Any]:
    return next(e for e in entry["found"]["edges"] if e["provider"] == provider)


def new_tech(net: Any, node: str, title: str, approved: bool) -> str:
    key = str(uuid.uuid4())
    net.execute(
        node,
        "INSERT INTO public.technology (id, title, description, district, approved) VALUES (%s, %s, %s, %s, %s)",
        (key, title, f"{title} described", node, approved),
    )
    return key


def new_approach(net: Any, node: str, title: str, status: str) -> str:
    key = str(uuid.uuid4())
    net.execute(
        node,
        "INSERT INTO public.approach (id, title, status, district, internal_note) VALUES (%s, %s, %s, %s, %s)",
        (key, title, status, node, f"note on {title} stays at {node}"),
    )
    return key


@pytest.mark.parametrize("engine", ["pglogical", "native"])
def test_approval_lifecycle_then_verify_and_repair(network: Any, engine: str) -> None:
    net = network(parents=SMALL)
    use_engine(net, engine)
    applied = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    wait_for(lambda: all_replicating(net), "every subscription replicating")

    # --- before: rows that the cases below will change ---------------------
    t = {
        "edited": new_tech(net, "d1", "terraces", True),
        "to_approve": new_tech(net, "d1", "mulching", False),
        "to_withdraw": new_tech(net, "d1", "burning", True),
        "to_delete": new_tech(net, "d1", "flooding", True),
        "draft_to_delete": new_tech(net, "d1", "guesswork", False),
        "other_district": new_tech(net, "d2", "check dams", True),
    }
    a = {
        "edited": new_approach(net, "d1", "watershed plan", "approved"),
        "to_approve": new_approach(net, "d1", "grazing rules", "submitted"),
        "to_withdraw": new_approach(net, "d1", "burn season", "approved"),
        "to_delete": new_approach(net, "d1", "old scheme", "approved"),
        "draft_to_delete": new_approach(net, "d1", "idea", "draft"),
        "other_district": new_approach(net, "d2", "farmer groups", "approved"),
    }
    settle(net)
    before = rows(net, "region", "public.technology", TECH_COLUMNS)
    assert set(before) == {t["edited"], t["to_withdraw"], t["to_delete"], t["other_district"]}

    # --- the cases, at the districts ---------------------------------------
    t["new_approved"] = new_tech(net, "d1", "agroforestry", True)  # insert approved
    t["new_draft"] = new_tech(net, "d1", "half-baked", False)  # insert draft
    net.execute("d1", "UPDATE public.technology SET approved = true WHERE id = %s", (t["to_approve"],))
    net.execute("d1", "UPDATE public.technology SET title = 'stone terraces' WHERE id = %s", (t["edited"],))
    net.execute("d1", "UPDATE public.technology SET approved = false WHERE id = %s", (t["to_withdraw"],))
    net.execute("d1", "DELETE FROM public.technology WHERE id = %s", (t["to_delete"],))
    net.execute("d1", "DELETE FROM public.technology WHERE id = %s", (t["draft_to_delete"],))

    a["new_approved"] = new_approach(net, "d1", "soil clubs", "approved")
    a["new_draft"] = new_approach(net, "d1", "maybe", "draft")
    net.execute("d1", "UPDATE public.approach SET status = 'approved' WHERE id = %s", (a["to_approve"],))
    net.execute("d1", "UPDATE public.approach SET title = 'watershed plan v2' WHERE id = %s", (a["edited"],))
    net.execute("d1", "UPDATE public.approach SET status = 'withdrawn' WHERE id = %s", (a["to_withdraw"],))
    net.execute("d1", "DELETE FROM public.approach WHERE id = %s", (a["to_delete"],))
    net.execute("d1", "DELETE FROM public.approach WHERE id = %s", (a["draft_to_delete"],))
    settle(net)

    # --- expected at region and nation: exactly the approved rows ----------
    expected_tech = {
        **rows(net, "d1", "public.technology", TECH_COLUMNS, "approved"),
        **rows(net, "d2", "public.technology", TECH_COLUMNS, "approved"),
    }
    assert set(expected_tech) == {t["edited"], t["to_approve"], t["new_approved"], t["other_district"]}
    assert expected_tech[t["edited"]][1] == "stone terraces"
    expected_appr = {
        **rows(net, "d1", "public.approach", APPROACH_COLUMNS, "status = 'approved'"),
        **rows(net, "d2", "public.approach", APPROACH_COLUMNS, "status = 'approved'"),
    }
    assert set(expected_appr) == {a["edited"], a["to_approve"], a["new_approved"], a["other_district"]}

    if engine == "native":
        # --- native delivers every case on its own: no verify difference, no repair
        for node in UPPER:
            assert rows(net, node, "public.technology", TECH_COLUMNS) == expected_tech, node
            assert rows(net, node, "public.approach", APPROACH_COLUMNS) == expected_appr, node
            notes = net.execute(node, "SELECT count(*) FROM public.approach WHERE internal_note IS NOT NULL")
            assert notes == [(0,)]
        code, report = verify(net)
        assert code == 0, report
        assert report["summary"] == {**report["summary"], "missing": 0, "differing": 0, "stale": 0}
        later = new_tech(net, "d2", "still flowing", True)
        settle(net)
        assert later in rows(net, "nation", "public.technology", TECH_COLUMNS)
        return

    # --- what pglogical delivers on its own --------------------------------
    for node in UPPER:
        got = rows(net, node, "public.technology", TECH_COLUMNS)
        # Right: insert approved, insert draft, edit, delete approved, delete draft.
        assert got[t["new_approved"]] == expected_tech[t["new_approved"]]
        assert t["new_draft"] not in got
        assert got[t["edited"]] == expected_tech[t["edited"]]
        assert t["to_delete"] not in got and t["draft_to_delete"] not in got
        # Wrong: approving never arrives (UPDATE of a row the subscriber lacks,
        # "tuple not found", skipped); withdrawing is never sent (stale).
        assert t["to_approve"] not in got
        assert t["to_withdraw"] in got and got[t["to_withdraw"]][4] is True
        assert set(got) == set(expected_tech) - {t["to_approve"]} | {t["to_withdraw"]}

        got_a = rows(net, node, "public.approach", APPROACH_COLUMNS)
        assert got_a[a["new_approved"]] == expected_appr[a["new_approved"]]
        assert got_a[a["edited"]] == expected_appr[a["edited"]]
        assert a["to_approve"] not in got_a
        assert got_a[a["to_withdraw"]][2] == "approved"
        assert set(got_a) == set(expected_appr) - {a["to_approve"]} | {a["to_withdraw"]}
        notes = net.execute(node, "SELECT count(*) FROM public.approach WHERE internal_note IS NOT NULL")
        assert notes == [(0,)]

    # --- a row changed by hand at the region (replicates on to the nation) --
    net.execute("region", "UPDATE public.technology SET title = 'typo' WHERE id = %s", (t["other_district"],))
    settle(net)

    # --- verify finds every difference, per edge ---------------------------
    code, report = verify(net)
    assert code == 2
    region_tech = found(report, "region", "public.technology")
    assert region_tech["status"] == "differences"
    assert edge(region_tech, "d1")["missing"] == {"count": 1, "sample": [t["to_approve"]]}
    assert edge(region_tech, "d1")["differing"]["count"] == 0
    assert edge(region_tech, "d2")["differing"] == {"count": 1, "sample": [t["other_district"]]}
    assert region_tech["found"]["stale"] == {"count": 1, "sample": [t["to_withdraw"]]}
    region_appr = found(report, "region", "public.approach")
    assert edge(region_appr, "d1")["missing"] == {"count": 1, "sample": [a["to_approve"]]}
    assert region_appr["found"]["stale"] == {"count": 1, "sample": [a["to_withdraw"]]}
    # The nation holds what the region holds: consistent on its own edge.
    assert found(report, "nation", "public.technology")["status"] == "consistent"
    assert found(report, "nation", "public.approach")["status"] == "consistent"
    assert report["summary"]["missing"] == 2 and report["summary"]["stale"] == 2
    assert report["summary"]["differing"] == 1
    assert all(size > 0 for size in report["bytes_read"].values())

    # --- repair, bottom-up; the nation heals through the region -------------
    text = cli("verify", "-d", str(net.dir), "--repair")
    assert text.exit_code == 0, text.output
    assert "repaired region: 1 inserted, 1 updated, 1 deleted; now consistent" in text.stdout
    assert "repaired region: 1 inserted, 0 updated, 1 deleted; now consistent" in text.stdout
    settle(net)
    for node in UPPER:
        assert rows(net, node, "public.technology", TECH_COLUMNS) == expected_tech, node
        assert rows(net, node, "public.approach", APPROACH_COLUMNS) == expected_appr, node
    code, report = verify(net)
    assert code == 0, report
    assert report["summary"] == {**report["summary"], "missing": 0, "differing": 0, "stale": 0}
    # The subscriptions kept running through the repair.
    assert all_replicating(net)
    # And replication still flows after the repair.
    later = new_tech(net, "d2", "after repair", True)
    settle(net)
    assert later in rows(net, "nation", "public.technology", TECH_COLUMNS)
