"""End-to-end freshness (monitoring: heartbeat): the tool's table, its plan, `reconcile heartbeat`, status.

Pure tests show the table changes no plan of a network that does not ask for
it, and that a plan that asks converges in the simulator in a safe order; the
real-server test beats at the leaves, reads the freshness at region and
nation, then stops one district's link and sees its freshness there pass the
limit while the other district's stays small.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML
from simulate import simulate_live

from reconciler.actions import AddTable, CreateHeartbeat
from reconciler.apply.graph import dependencies
from reconciler.diff import Desired, DesiredNode, changes
from reconciler.health.freshness import judge_freshness
from reconciler.health.reader import beat_ages
from reconciler.health.readings import NodeReading
from reconciler.health.report import Level
from reconciler.heartbeat import HEARTBEAT_TABLE, beat_statement, leaves, observers
from reconciler.live import LiveNode
from reconciler.model import DesiredState, Monitoring
from reconciler.topology import desired_catalogs, subscription_name
from tests.support import cli, plan_actions, wait_for

SMALL = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}
REPO = Path(__file__).resolve().parent.parent


def _state(heartbeat: bool, limit: float = 600.0) -> DesiredState:
    return DesiredState.model_validate(
        {
            "version": 1,
            "nodes": {
                name: {"level": level, "dsn": f"host=h dbname={name}", **({"upstream": up} if up else {})}
                for name, level, up in (
                    ("nation", "nation", None),
                    ("region", "region", "nation"),
                    ("d1", "district", "region"),
                    ("d2", "district", "region"),
                )
            },
            "replication_sets": {
                "approved": {"tables": {"public.technology": {"row_filter": "approved"}}},
                "other": {"tables": {"public.approach": {}}},
            },
            "monitoring": {"heartbeat": heartbeat, "max_freshness_seconds": limit},
        }
    )


def _desired(state: DesiredState) -> Desired:
    return Desired(
        heartbeat=state.monitoring.heartbeat,
        nodes={
            n: DesiredNode(catalog=c, upstream=state.nodes[n].upstream)
            for n, c in desired_catalogs(state).items()
        },
    )


def test_off_changes_no_catalog_and_no_plan() -> None:
    off = desired_catalogs(_state(False))
    assert all(HEARTBEAT_TABLE not in s.tables for c in off.values() for s in c.sets.values())
    assert (
        desired_catalogs(DesiredState.model_validate({**_state(False).model_dump(), "monitoring": {}})) == off
    )
    assert not any(isinstance(a, CreateHeartbeat) for a in changes(_desired(_state(False)), {}))
    assert Monitoring().heartbeat is False


def test_on_puts_the_table_in_every_set_unfiltered_and_converges() -> None:
    state = _state(True)
    for catalog in desired_catalogs(state).values():
        assert {s: t.tables[HEARTBEAT_TABLE] for s, t in catalog.sets.items()} == {
            "approved": catalog.sets["approved"].tables[HEARTBEAT_TABLE],
            "other": catalog.sets["other"].tables[HEARTBEAT_TABLE],
        }
        assert catalog.sets["approved"].tables[HEARTBEAT_TABLE].row_filter is None
        assert catalog.sets["approved"].tables[HEARTBEAT_TABLE].columns is None
    desired = _desired(state)
    live = {n: LiveNode() for n in state.nodes}
    actions = changes(desired, live)
    assert sorted(a.node for a in actions if isinstance(a, CreateHeartbeat)) == sorted(state.nodes)
    # The simulator refuses a table used before it exists at the node or a subscriber.
    after = simulate_live(live, actions)
    assert changes(desired, after) == []


def test_existing_network_turning_it_on_adds_after_the_subscribers_have_the_table() -> None:
    off, on = _state(False), _state(True)
    live = simulate_live(
        {n: LiveNode() for n in off.nodes}, changes(_desired(off), {n: LiveNode() for n in off.nodes})
    )
    actions = changes(_desired(on), live)
    kinds = sorted({a.kind for a in actions})
    assert kinds == ["add_table", "create_heartbeat"], kinds
    adds = [a for a in actions if isinstance(a, AddTable)]
    assert all(a.table == HEARTBEAT_TABLE for a in adds)
    # Providers copy the table to their subscriber; nobody subscribes to the nation.
    assert {a.node for a in adds if a.synchronize_data} == {"d1", "d2", "region"}
    waits = dependencies(actions)
    made = {a.node: i for i, a in enumerate(actions) if isinstance(a, CreateHeartbeat)}
    for index, action in enumerate(actions):
        if isinstance(action, AddTable) and action.node != "nation":
            subscriber = on.nodes[action.node].upstream
            assert subscriber is not None and made[subscriber] in waits[index], (action, waits[index])
    assert changes(_desired(on), simulate_live(live, actions)) == []


def test_leaves_observers_and_the_beat_statement() -> None:
    state = _state(True)
    assert leaves(state) == ["d1", "d2"]
    assert observers(state, "d1") == ["region", "nation"]
    text = beat_statement("d1").as_string(None)
    assert "'d1'" in text and "ON CONFLICT (node) DO UPDATE" in text


def test_beat_ages_keep_only_declared_nodes_and_finite_ages() -> None:
    state = _state(True)
    text = json.dumps({"d1": 3.5, "intruder": 1, "d2": "soon"})
    assert beat_ages(state, text) == {"d1": 3.5}
    assert beat_ages(state, None) == {} and beat_ages(state, "[1]") == {} and beat_ages(state, "{") == {}
    assert beat_ages(state, '{"d1": 1e999}') == {}  # json reads inf: not a number to judge
    assert not math.isinf(beat_ages(state, '{"d1": 2}')["d1"])


def test_freshness_is_judged_at_every_tier_above_each_leaf() -> None:
    state = _state(True, limit=10.0)  # WARN at 5 s
    readings = {
        "region": NodeReading(node="region", reachable=True, beats={"d1": 1.0, "d2": 12.0}),
        "nation": NodeReading(node="nation", reachable=True, beats={"d1": 6.0}),
    }
    judged = {(f.source, f.observer): f for f in judge_freshness(state, readings)}
    assert sorted(judged) == [("d1", "nation"), ("d1", "region"), ("d2", "nation"), ("d2", "region")]
    assert judged["d1", "region"].level is Level.OK and judged["d1", "region"].seconds == 1.0
    assert judged["d1", "nation"].level is Level.WARN
    assert judged["d2", "region"].level is Level.CRIT
    assert judged["d2", "region"].findings[0].message == "d2 as seen at region: 12 s >= limit 10 s"
    assert judged["d2", "nation"].level is Level.WARN and judged["d2", "nation"].seconds is None
    assert "no beat of d2 has reached nation" in judged["d2", "nation"].findings[0].message
    assert judge_freshness(_state(False), readings) == ()


def _sets_yaml(**monitoring: Any) -> str:
    """The example replication.yaml with a monitoring block of the test's own."""
    yaml = YAML(typ="safe")
    sets = yaml.load((REPO / "desired-state" / "replication.yaml").read_text())
    sets["monitoring"] = monitoring
    buffer = io.StringIO()
    yaml.dump(sets, buffer)
    return buffer.getvalue()


def _freshness(directory: Path) -> tuple[dict[tuple[str, str], dict[str, Any]], str]:
    result = cli("status", "-d", str(directory), "--format", "json", "--no-drift", "--timeout", "3")
    assert result.exit_code in (0, 2), result.output
    document = json.loads(result.stdout)
    return {(f["source"], f["observer"]): f for f in document["freshness"]}, document["level"]


@pytest.mark.server
def test_beats_reach_the_top_and_a_stopped_link_goes_stale(network: Any) -> None:
    limit = 8.0  # WARN at 4 s
    net = network(SMALL, sets_yaml=_sets_yaml(heartbeat=True, max_freshness_seconds=limit))
    planned = plan_actions(net.dir)
    assert sorted(a["node"] for a in planned if a["kind"] == "create_heartbeat") == sorted(SMALL)
    applied = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert plan_actions(net.dir) == []

    def beat() -> None:
        result = cli("heartbeat", "-d", str(net.dir), "--timeout", "3")
        assert result.exit_code == 0, result.output
        assert result.stdout == "d1: beat\nd2: beat\n"

    def fresh() -> bool:
        beat()
        seen, _ = _freshness(net.dir)
        return all(f["seconds"] is not None and f["level"] == "ok" for f in seen.values())

    wait_for(fresh, "every beat at region and nation, younger than the warn level", timeout=60)
    seen, level = _freshness(net.dir)
    assert sorted(seen) == [("d1", "nation"), ("d1", "region"), ("d2", "nation"), ("d2", "region")]
    assert level == "ok"
    text = cli("status", "-d", str(net.dir), "--no-drift", "--timeout", "3").stdout
    assert "d1 as seen at nation: " in text
    prom = cli("status", "-d", str(net.dir), "--no-drift", "--format", "prometheus", "--timeout", "3").stdout
    ages = {
        (s.labels["source"], s.labels["observer"]): s.value
        for f in text_string_to_metric_families(prom)
        for s in f.samples
        if s.name == "reconcile_freshness_seconds"
    }
    assert sorted(ages) == sorted(seen) and all(0 <= v < limit / 2 for v in ages.values())

    # d1's link to the region stops: d1 keeps beating, nothing of it gets through.
    net.execute("region", "SELECT pglogical.alter_subscription_disable(%s, true)",
                (subscription_name("region", "d1"),))  # fmt: skip

    def stale() -> bool:
        beat()
        seen, _ = _freshness(net.dir)
        return seen["d1", "region"]["level"] == "crit" and seen["d1", "nation"]["level"] == "crit"

    wait_for(stale, f"d1's freshness past {limit:g} s at region and nation", timeout=40)
    seen, level = _freshness(net.dir)
    assert level == "crit"
    assert seen["d2", "region"]["level"] == "ok" and seen["d2", "nation"]["level"] == "ok"
    message = seen["d1", "region"]["findings"][0]["message"]
    assert message.startswith("d1 as seen at region: ") and message.endswith(f">= limit {limit:.1f} s")
    # The tool's rows stay out of verify (text keys, preflight's uuid rule is for declared tables).
    checked = cli("verify", "-d", str(net.dir), "--timeout", "5")
    assert HEARTBEAT_TABLE not in checked.output
