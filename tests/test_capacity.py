"""The capacity check: workers, slots and walsenders per server against the declared nodes (issue 20)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_preflight import STATE, facts, result

from reconciler.capacity import Capacity, shortfalls
from reconciler.inspect import inspect_network
from reconciler.inspect.normalise import fingerprint
from reconciler.load import load_desired_state
from reconciler.model import Engine, NodeCatalog
from reconciler.preflight import Blocker, preflight

EXAMPLE = load_desired_state(Path(__file__).resolve().parent.parent / "desired-state")
PLENTY = Capacity(max_worker_processes=256, max_replication_slots=128, max_wal_senders=128)


def test_the_formula_on_the_example_network() -> None:
    # region_east and region_west on one server: 2 databases, 4 subscriptions (2 districts each),
    # 2 providers (each feeds the nation): workers 2 + 2 + 2 x 4 = 12, slots max(2, 4) = 4, senders 2.
    regions = ["region_east", "region_west"]
    exact = Capacity(max_worker_processes=12, max_replication_slots=4, max_wal_senders=2)
    assert shortfalls(EXAMPLE, regions, exact) == []
    short = Capacity(max_worker_processes=11, max_replication_slots=3, max_wal_senders=1)
    assert shortfalls(EXAMPLE, regions, short) == [
        "max_worker_processes is 11, too few for this server's node(s) (region_east, region_west): "
        "2 (supervisor, launcher) + per database 1 manager + per subscription 2 (apply, copy)"
        " = 2 + 2 + 2 x 4 = 12; raise it to at least 12 (restart needed)",
        "max_replication_slots is 3, too few for this server's node(s) (region_east, region_west): "
        "1 slot per provider node (2) and 1 replication origin per subscription (4) need 4; "
        "raise it to at least 4 (restart needed)",
        "max_wal_senders is 1, too few for this server's node(s) (region_east, region_west): "
        "1 walsender per provider node's subscriber = 2; raise it to at least 2 (restart needed)",
    ]


def test_leaves_and_the_top() -> None:
    # Four districts on one server: 4 managers, no subscription, 4 slots and senders.
    districts = ["district_a", "district_b", "district_c", "district_d"]
    assert (
        shortfalls(
            EXAMPLE, districts, Capacity(max_worker_processes=6, max_replication_slots=4, max_wal_senders=4)
        )
        == []
    )
    lacking = shortfalls(
        EXAMPLE, districts, Capacity(max_worker_processes=5, max_replication_slots=4, max_wal_senders=3)
    )
    assert [m.split(" is ")[0] for m in lacking] == ["max_worker_processes", "max_wal_senders"]
    # The nation: 1 database, 2 subscriptions, no provider (it feeds nobody).
    assert (
        shortfalls(
            EXAMPLE, ["nation"], Capacity(max_worker_processes=7, max_replication_slots=2, max_wal_senders=0)
        )
        == []
    )
    assert (
        len(
            shortfalls(
                EXAMPLE,
                ["nation"],
                Capacity(max_worker_processes=6, max_replication_slots=1, max_wal_senders=0),
            )
        )
        == 2
    )


def test_native_workers_are_not_counted_here() -> None:
    native = EXAMPLE.model_copy(update={"engine": Engine.NATIVE})
    tiny = Capacity(max_worker_processes=1, max_replication_slots=4, max_wal_senders=2)
    assert shortfalls(native, ["region_east", "region_west"], tiny) == []


def test_preflight_blocks_every_node_of_a_short_server_and_sums_them() -> None:
    # STATE: district_a and district_b share a server (sysid-district); the region has 2 subscriptions.
    low = Capacity(max_worker_processes=3, max_replication_slots=2, max_wal_senders=2)
    blocked = preflight(
        STATE,
        result(
            district_a=facts("district_a", capacity=low),
            district_b=facts("district_b", capacity=low),
            region=facts("region", capacity=PLENTY),
        ),
    )
    message = (
        "max_worker_processes is 3, too few for this server's node(s) (district_a, district_b): "
        "2 (supervisor, launcher) + per database 1 manager + per subscription 2 (apply, copy)"
        " = 2 + 2 + 2 x 0 = 4; raise it to at least 4 (restart needed)"
    )
    assert blocked == [
        Blocker(node="district_a", message=message),
        Blocker(node="district_b", message=message),
    ]
    # Enough for one district is not enough for two on the same server; alone it passes.
    assert (
        preflight(STATE, result(district_a=facts("district_a", system_identifier="own", capacity=low))) == []
    )


def test_settings_are_not_in_the_fingerprint() -> None:
    server: dict[str, Any] = {
        "wal_level": "logical",
        "max_worker_processes": 8,
        "max_replication_slots": 10,
        "max_wal_senders": 10,
        "last_apply_result": None,
        "apply_lock_held": False,
        "log_readable": False,
    }
    raised = {**server, "max_worker_processes": 64, "max_replication_slots": 64, "max_wal_senders": 64}
    assert fingerprint(NodeCatalog(), server, {}) == fingerprint(NodeCatalog(), raised, {})
    assert fingerprint(NodeCatalog(), server, {}) != fingerprint(
        NodeCatalog(), {**server, "wal_level": "replica"}, {}
    )


@pytest.mark.server
def test_inspection_reads_the_settings_in_its_one_round_trip(network: Any) -> None:
    net = network(parents={"nation": None, "region": "nation", "d1": "region", "d2": "region"})
    read = inspect_network(net.state).facts
    for node in ("nation", "d1"):
        shown = dict(
            net.execute(
                node,
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('max_worker_processes', 'max_replication_slots', 'max_wal_senders')",
            )
        )
        assert read[node].capacity == Capacity(**{k: int(v) for k, v in shown.items()})
        assert read[node].stats.round_trips == 1
    assert preflight(net.state, inspect_network(net.state)) == []
