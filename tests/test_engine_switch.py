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
from test_native import (
    SMALL,
    apply,
    cli,
    has_row,
    kinds,
    plan_json,
    subscriptions_ready,
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
