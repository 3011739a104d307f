"""Drift made by hand with pglogical's own functions: plan shows exactly that change, apply repairs it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import cli, plan_actions, wait_for

pytestmark = pytest.mark.server

SMALL = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}


def converge(directory: Path) -> None:
    result = cli("apply", "-d", str(directory), "--auto-approve", "--allow-destroy")
    assert result.exit_code == 0, result.output
    assert "converged" in result.output
    check = cli("plan", "-d", str(directory), "--detailed-exitcode")
    assert check.exit_code == 0, check.output


def extra_subscription(net: Any) -> None:
    net.execute(
        "region",
        "SELECT pglogical.create_subscription('handmade', %s, '{ddl_sql}', false, false, '{}')",
        (net.dsn("d1"),),
    )


def disabled_subscription(net: Any) -> None:
    net.execute("region", "SELECT pglogical.alter_subscription_disable('region_from_d1', true)")


def changed_row_filter(net: Any) -> None:
    with net.connect("d1").transaction() as tx:
        conn = tx.connection
        conn.execute("SELECT pglogical.replication_set_remove_table('approved', 'public.technology')")
        conn.execute(
            "SELECT pglogical.replication_set_add_table('approved', 'public.technology', false, NULL, 'true')"
        )


def removed_table(net: Any) -> None:
    net.execute("d1", "SELECT pglogical.replication_set_remove_table('approved', 'public.technology')")


def extra_table(net: Any) -> None:
    net.execute("d1", "CREATE TABLE public.extra (id uuid PRIMARY KEY)")
    net.execute("d1", "SELECT pglogical.replication_set_add_table('approved', 'public.extra')")


def changed_column_list(net: Any) -> None:
    with net.connect("d1").transaction() as tx:
        conn = tx.connection
        conn.execute("SELECT pglogical.replication_set_remove_table('approved', 'public.approach')")
        conn.execute(
            "SELECT pglogical.replication_set_add_table('approved', 'public.approach', false,"
            " ARRAY['id', 'title', 'status', 'district'], '(status = ''approved'') IS NOT FALSE')"
        )


def changed_forward_origins(net: Any) -> None:
    net.execute("nation", "SELECT pglogical.drop_subscription('nation_from_region')")
    net.execute(
        "nation",
        "SELECT pglogical.create_subscription('nation_from_region', %s, '{approved}', false, false, '{}')",
        (net.dsn("region"),),
    )


def extra_set(net: Any) -> None:
    net.execute("d2", "SELECT pglogical.create_replication_set('handmade')")


def changed_replicate_flags(net: Any) -> None:
    net.execute("d2", "SELECT pglogical.alter_replication_set('approved', replicate_truncate := true)")


def orphan_slot(net: Any) -> None:
    net.execute("d2", "SELECT pg_create_logical_replication_slot('pgl_handmade_orphan', 'pglogical_output')")


CASES: list[tuple[Callable[[Any], None], str, str]] = [
    (extra_subscription, "region", "drop_subscription"),
    (disabled_subscription, "region", "alter_subscription"),
    (changed_row_filter, "d1", "replace_table"),
    (removed_table, "d1", "add_table"),
    (extra_table, "d1", "remove_table"),
    (changed_column_list, "d1", "replace_table"),
    (changed_forward_origins, "nation", "replace_subscription"),
    (extra_set, "d2", "drop_set"),
    (changed_replicate_flags, "d2", "alter_set"),
    (orphan_slot, "d2", "drop_slot"),
]


@pytest.mark.parametrize(("drift", "node", "kind"), CASES, ids=[c[0].__name__ for c in CASES])
def test_hand_drift_is_one_precise_change_and_apply_repairs_it(
    network: Any, drift: Callable[[Any], None], node: str, kind: str
) -> None:
    net = network(parents=SMALL)
    converge(net.dir)
    drift(net)
    actions = plan_actions(net.dir)
    assert [(a["node"], a["kind"]) for a in actions] == [(node, kind)], actions
    converge(net.dir)


def test_dropped_provider_node_is_recreated_and_its_subscription_replaced(network: Any) -> None:
    net = network(parents=SMALL)
    converge(net.dir)
    # pglogical refuses to drop a node whose slot is in use: stop the region first.
    net.execute("region", "SELECT pglogical.alter_subscription_disable('region_from_d2', true)")
    wait_for(
        lambda: (
            net.execute(
                "d2",
                "SELECT count(*) FROM pg_replication_slots WHERE active AND database = current_database()",
            )[0][0]
            == 0
        ),
        "d2's slot to become inactive",
    )
    net.execute("d2", "SELECT pglogical.drop_node('d2')")
    actions = plan_actions(net.dir)
    kinds = {(a["node"], a["kind"]) for a in actions}
    assert ("d2", "create_node") in kinds
    # The subscription's catalog still matches, but its slot went with the
    # node: only a replace brings the link back.
    replace = [a for a in actions if a["kind"] == "replace_subscription"]
    assert [a["node"] for a in replace] == ["region"], actions
    assert "is missing on d2: re-copy needed" in replace[0]["description"]
    assert ("region", "alter_subscription") not in kinds
    converge(net.dir)
    key = str(uuid.uuid4())
    net.execute(
        "d2",
        "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'after repair', 'd2', true)",
        (key,),
    )
    wait_for(
        lambda: (
            net.execute("nation", "SELECT count(*) FROM public.technology WHERE id = %s", (key,))[0][0] == 1
        ),
        "a row written at d2 after the repair to reach the nation",
    )


def test_subscription_dropped_by_hand_comes_back_without_copying_onto_existing_rows(network: Any) -> None:
    net = network(parents=SMALL)
    converge(net.dir)
    key = str(uuid.uuid4())
    net.execute(
        "d1",
        "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'before', 'd1', true)",
        (key,),
    )
    wait_for(
        lambda: net.execute("region", "SELECT count(*) FROM public.technology WHERE id = %s", (key,))[0][0] == 1,
        "the row at the region",
    )
    net.execute("region", "SELECT pglogical.drop_subscription('region_from_d1')")
    actions = plan_actions(net.dir)
    assert [(a["node"], a["kind"], a["copy_data"]) for a in actions] == [("region", "create_subscription", False)]
    assert actions[0]["data_movement"] == "resync_needed"
    converge(net.dir)
    later = str(uuid.uuid4())
    net.execute(
        "d1",
        "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'after', 'd1', true)",
        (later,),
    )
    wait_for(
        lambda: net.execute("nation", "SELECT count(*) FROM public.technology WHERE id = %s", (later,))[0][0] == 1,
        "a new row through the re-created subscription",
    )
    status = net.execute("region", "SELECT status FROM pglogical.show_subscription_status('region_from_d1')")
    assert status == [("replicating",)]
