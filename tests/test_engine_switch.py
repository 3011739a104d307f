"""Engine switch on a running network: pglogical -> native, edge by edge, with writers active.

Each edge's native subscription is created without copying and starts
exactly where the pglogical one stopped (replication origin handover), then
the pglogical one is dropped: verify finds nothing missing, nothing doubled.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from test_native import (
    SMALL,
    apply,
    cli,
    has_row,
    kinds,
    plan_json,
    subscriptions_ready,
    tech,
    use_engine,
    wait_for,
)


@pytest.mark.server
def test_engine_switch_with_a_writer_loses_and_doubles_nothing(network: Any) -> None:
    net = network(parents=SMALL)
    apply(net)
    wait_for(
        lambda: all(
            status == "replicating"
            for node in ("region", "nation")
            for (status,) in net.execute(node, "SELECT status FROM pglogical.show_subscription_status()")
        ),
        "pglogical replicating",
    )
    stop = threading.Event()
    written: list[str] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with (
                psycopg.connect(net.dsn("d1"), autocommit=True) as c1,
                psycopg.connect(net.dsn("d2"), autocommit=True) as c2,
            ):
                n = 0
                while not stop.is_set():
                    for conn, node in ((c1, "d1"), (c2, "d2")):
                        key = str(uuid.uuid4())
                        conn.execute(
                            "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, %s, %s, true)",
                            (key, f"w{n}", node),
                        )
                        conn.execute(
                            "UPDATE public.technology SET title = title || '+' WHERE id = %s", (key,)
                        )
                        written.append(key)
                    n += 1
                    time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        time.sleep(1.0)
        use_engine(net, "native")
        switch = plan_json(net)
        switched = [(n, s) for n, k, s in kinds(switch) if k == "switch_subscription"]
        assert switched == [
            ("nation", "subscription nation_from_region"),
            ("region", "subscription region_from_d1"),
            ("region", "subscription region_from_d2"),
        ]
        assert not any(k == "create_subscription" for _, k, _ in kinds(switch))
        apply(net, "--allow-destroy")
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not errors, errors
    assert len(written) > 20
    wait_for(
        lambda: subscriptions_ready(net, "region") and subscriptions_ready(net, "nation"),
        "native replicating",
    )
    for node in ("region", "nation"):
        assert net.execute(node, "SELECT count(*) FROM pglogical.subscription") == [(0,)]
    last = written[-1]
    wait_for(lambda: has_row(net, "nation", last), "the last write to reach the nation")
    verify = cli("verify", "-d", str(net.dir), "--format", "json")
    assert verify.exit_code == 0, verify.output
    for node in ("region", "nation"):
        got = net.execute(node, "SELECT id::text, title FROM public.technology WHERE title LIKE 'w%'")
        assert sorted(k for k, _ in got) == sorted(written), node
        assert all(title.endswith("+") and not title.endswith("++") for _, title in got), node
    assert cli("plan", "-d", str(net.dir), "--detailed-exitcode").exit_code == 0


@pytest.mark.server
def test_engine_switch_never_gives_a_subscription_an_origin_name_its_provider_forwards(network: Any) -> None:
    """While a node's pglogical subscription runs, its provider forwards changes under its server's
    origin names; one equal to the new native subscription's origin (pg_<oid>) crashes pglogical's
    apply worker and restarts the node's server. A half-done switch whose disabled native
    subscription has such a name gets it made again under a new oid."""
    net = network(parents=SMALL)
    apply(net)
    wait_for(lambda: pglogical_replicating(net), "pglogical replicating")
    use_engine(net, "native")
    switch = next(
        a for a in plan_json(net)["actions"] if a["kind"] == "switch_subscription" and a["node"] == "nation"
    )
    dsn = switch["after"]["provider_dsn"]
    # The region's server gets an origin of the same name from a subscription in another
    # database (origins, like subscription oids, are per server); OIDs are made to meet.
    other = conninfo_to_dict(net.dsn("region")) | {"dbname": "postgres"}
    with psycopg.connect(make_conninfo(**other), autocommit=True) as region_server:
        clash = _same_oid_subscriptions(net, region_server, dsn)
        try:
            started = net.execute("nation", "SELECT pg_postmaster_start_time()")
            result = apply(net, "--allow-destroy")
            assert f"made again, {clash} being an origin name on region" in result.output
            ((origin,),) = net.execute("nation", ORIGIN_OF_NATION)
            assert origin != clash
            assert net.execute("nation", "SELECT pg_postmaster_start_time()") == started
            key = tech(net, "d1", "after the switch", approved=True)
            wait_for(lambda: has_row(net, "nation", key), "a new row to reach the nation natively")
        finally:
            region_server.execute("DROP SUBSCRIPTION IF EXISTS reconcile_test_clash")


ORIGIN_OF_NATION = "SELECT 'pg_' || oid FROM pg_subscription WHERE subname = 'nation_from_region'"


def _same_oid_subscriptions(net: Any, region_server: psycopg.Connection[Any], dsn: str) -> str:
    """A disabled native nation_from_region (as a killed switch leaves it) and a subscription on
    the region's server with the same oid; its origin name."""
    nation = net.connect("nation")
    skew = 0  # oids CREATE SUBSCRIPTION uses before its own (measured, not assumed)
    for _ in range(5):
        nation.execute("DROP SUBSCRIPTION IF EXISTS nation_from_region")
        region_next = _next_oid(region_server)
        _advance_oids(nation, region_next + 10)  # ahead of the region's, which then catches up
        nation.execute(
            sql.SQL(
                "CREATE SUBSCRIPTION nation_from_region CONNECTION {dsn} PUBLICATION approved"
                " WITH (enabled = false, copy_data = false)"
            ).format(dsn=sql.Literal(dsn))
        )
        ((wanted,),) = nation.execute("SELECT oid FROM pg_subscription WHERE subname = 'nation_from_region'")
        _advance_oids(region_server, wanted - skew)
        region_server.execute(
            "CREATE SUBSCRIPTION reconcile_test_clash CONNECTION 'dbname=nowhere' PUBLICATION p"
            " WITH (connect = false, slot_name = NONE)"
        )
        ((got,),) = region_server.execute(
            "SELECT oid FROM pg_subscription WHERE subname = 'reconcile_test_clash'"
        )
        if got == wanted:
            return f"pg_{wanted}"
        region_server.execute("DROP SUBSCRIPTION reconcile_test_clash")
        skew = max(0, got - wanted + skew)
    raise AssertionError("could not give two subscriptions one oid")


def _next_oid(conn: psycopg.Connection[Any]) -> int:
    ((oid,),) = conn.execute("SELECT lo_create(0)::oid::bigint")
    conn.execute("SELECT lo_unlink(%s)", (oid,))
    return int(oid) + 1


def _advance_oids(conn: psycopg.Connection[Any], target: int) -> None:
    """Use up the server's oids below `target` (large objects take one each)."""
    need = target - _next_oid(conn)
    if need > 0:
        conn.execute(
            "SELECT lo_unlink(o) FROM (SELECT lo_create(0) AS o FROM generate_series(1, %s)) x", (need,)
        )


def pglogical_replicating(net: Any) -> bool:
    return all(
        status == "replicating"
        for node in ("region", "nation")
        for (status,) in net.execute(node, "SELECT status FROM pglogical.show_subscription_status()")
    )


@pytest.mark.server
def test_a_provider_does_not_turn_native_while_a_pglogical_subscriber_streams_from_it(network: Any) -> None:
    """`apply --node region` would switch the region's own subscriptions while the nation still
    subscribes through pglogical: refused, nothing changed there; the whole apply then converges."""
    net = network(parents=SMALL)
    apply(net)
    wait_for(lambda: pglogical_replicating(net), "pglogical replicating")
    use_engine(net, "native")
    result = cli(
        "apply",
        "-d",
        str(net.dir),
        "--auto-approve",
        "--allow-dirty",
        "--allow-destroy",
        "--node",
        "region",
        "--node",
        "d1",
        "--node",
        "d2",
    )
    assert result.exit_code == 1, result.output
    assert "region still feeds pglogical subscriber(s)" in result.output, result.output
    assert net.execute("region", "SELECT count(*) FROM pg_subscription") == [(0,)]
    assert net.execute("region", "SELECT count(*) FROM pglogical.subscription") == [(2,)]
    apply(net, "--allow-destroy")
    key = tech(net, "d1", "after the switch", approved=True)
    wait_for(lambda: has_row(net, "nation", key), "a new row to reach the nation natively")
    assert net.execute("region", "SELECT count(*) FROM pglogical.subscription") == [(0,)]
