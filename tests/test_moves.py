"""Pure: a node whose upstream changes is one planned move, in text, JSON and Markdown, from the diff's actions."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql
from ruamel.yaml import YAML

from reconciler.diff import diff
from reconciler.load import load_desired_state
from reconciler.model import Engine, NodeCatalog, Subscription
from reconciler.moves import moves, retirements
from reconciler.plan import Plan
from reconciler.render.plan_json import render_json
from reconciler.render.plan_markdown import render_markdown
from reconciler.render.plan_text import render_text
from reconciler.verify.node import TableSide
from reconciler.verify.prune import PruneRefused, delete_moved
from reconciler.verify.targets import moved_from, subscriber_checks

SETS = Path(__file__).resolve().parent.parent / "desired-state" / "replication.yaml"


def _sub(subscriber: str, provider: str, forward: tuple[str, ...]) -> Subscription:
    return Subscription(
        name=f"{subscriber}_from_{provider}",
        provider_node=provider,
        provider_dsn=f"host={provider}",
        replication_sets=("approved",),
        forward_origins=forward,
    )


def _catalogs(children: dict[str, list[str]]) -> dict[str, NodeCatalog]:
    """Regions and their districts under one nation; a region with children forwards all origins."""
    cats = {
        "nation": NodeCatalog(
            subscriptions={
                f"nation_from_{r}": _sub("nation", r, ("all",) if kids else ())
                for r, kids in children.items()
            }
        )
    }
    for region, kids in children.items():
        cats[region] = NodeCatalog(subscriptions={f"{region}_from_{d}": _sub(region, d, ()) for d in kids})
        cats.update({d: NodeCatalog() for d in kids})
    return cats


def test_a_changed_upstream_is_one_move_with_its_steps_in_apply_order() -> None:
    live = _catalogs({"r1": ["a", "b"], "r2": ["c"]})
    actions = diff(_catalogs({"r1": ["a"], "r2": ["b", "c"]}), live)
    found = moves(actions)
    assert [m.describe() for m in found] == ["move b: r1 -> r2"]
    assert [(actions[i].node, actions[i].kind) for i in found[0].steps] == [
        ("r1", "drop_subscription"),
        ("r2", "create_subscription"),
    ]
    # The old parent loses its last child: the tier above's re-subscription is a step of the move.
    actions = diff(_catalogs({"r1": [], "r2": ["b", "c"]}), _catalogs({"r1": ["b"], "r2": ["c"]}))
    (move,) = moves(actions)
    assert [(actions[i].node, actions[i].kind) for i in move.steps] == [
        ("r1", "drop_subscription"),
        ("r2", "create_subscription"),
        ("nation", "replace_subscription"),
    ]
    plan = Plan(actions=tuple(actions), tool_version="test")
    text = render_text(plan)
    assert (
        "move b: r1 -> r2:\n  1. r1: - subscription r1_from_b <- b\n  2. r2: + subscription r2_from_b" in text
    )
    assert "  3. nation: -/+ subscription nation_from_r1: forward_origins {all} -> {}" in text
    document = json.loads(render_json(plan))
    assert document["moves"] == [
        {"node": "b", "from": "r1", "to": "r2", "description": "move b: r1 -> r2", "steps": list(move.steps)}
    ]
    assert "#### move b: r1 -> r2" in render_markdown(plan)


def test_a_new_or_retired_node_is_no_move() -> None:
    live = _catalogs({"r1": ["a", "b"], "r2": ["c"]})
    assert moves(diff(_catalogs({"r1": ["a"], "r2": ["c"]}), live)) == []
    assert moves(diff(_catalogs({"r1": ["a", "b"], "r2": ["c", "d"]}), live)) == []
    assert moves(diff(live, live)) == []


def test_a_node_no_longer_declared_is_retired_and_the_plan_says_its_rows_stay() -> None:
    live = _catalogs({"r1": ["a", "b"], "r2": ["c"]})
    actions = diff(_catalogs({"r1": ["a"], "r2": ["c"]}), live)
    declared = ("a", "c", "nation", "r1", "r2")
    plan = Plan(actions=tuple(actions), tool_version="test", declared=declared)
    text = render_text(plan)
    assert "retire b: no longer declared, r1 lets it go:\n  1. r1: - subscription r1_from_b <- b" in text
    assert "its rows stay at r1 and the tiers above" in text
    assert json.loads(render_json(plan))["retirements"][0]["rows"] == "kept upstream"
    # A declared provider left out of the plan (--node) is not retired; a plan without the list guesses nothing.
    assert moves(actions) == [] and retirements(actions, (*declared, "b")) == []
    assert "retire" not in render_text(Plan(actions=tuple(actions), tool_version="test"))


def test_a_woreda_moved_to_a_zone_of_another_region_is_elsewhere_for_its_old_zone(tmp_path: Path) -> None:
    # fed > r1, r2; z1, z3 under r1, z2 under r2; w moved z1 -> z2. Z1 still holds w's
    # history: w's rows reach fed (Z1's grandparent) without passing Z1, so they are
    # moved rows at Z1 (pruned without replicating), never stale rows to DELETE there.
    parents = {"fed": None, "r1": "fed", "r2": "fed", "z1": "r1", "z3": "r1", "z2": "r2"}
    parents |= {"w": "z2", "w1": "z1", "w3": "z3"}
    levels = ("woreda", "zone", "region", "federal")
    depth = {"fed": 3, "r1": 2, "r2": 2, "z1": 1, "z2": 1, "z3": 1}
    nodes: dict[str, dict[str, str]] = {}
    for name, up in parents.items():
        nodes[name] = {"level": levels[depth.get(name, 0)], "dsn": f"host=h{depth.get(name, 0)} dbname={name}"}
        if up is not None:
            nodes[name]["upstream"] = up
    yaml = YAML(typ="safe")
    with (tmp_path / "topology.yaml").open("w") as out:
        yaml.dump({"version": 1, "engine": "pglogical", "levels": list(levels), "nodes": nodes}, out)
    shutil.copy(SETS, tmp_path / "replication.yaml")
    state = load_desired_state(tmp_path)
    assert "w" in moved_from(state, "z1")
    assert "w1" not in moved_from(state, "z1")  # its own child is a provider, not elsewhere
    assert set(moved_from(state, "z1")) == {"w", "w3"}  # lower levels only, not under z1
    assert {"w", "z2"} <= set(moved_from(state, "r1")) and "w1" not in moved_from(state, "r1")
    assert moved_from(state, "fed") == ()
    elsewhere = {c.subscriber: c.elsewhere for c in subscriber_checks(state)}
    assert "w" in elsewhere["z1"]


class _FakeSession:
    """Records each statement's text; the set membership reads back `reads` in turn."""

    node = "r1"

    def __init__(self, reads: list[list[tuple[str, None, None]]]) -> None:
        self.reads = reads
        self.log: list[str] = []
        self.conn = self

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.log.append("BEGIN")
        try:
            yield
        except Exception:
            self.log.append("ROLLBACK")
            raise
        self.log.append("COMMIT")

    def execute(self, query: Any, params: Any = None) -> list[tuple[Any, ...]]:
        text = query.as_string(None) if hasattr(query, "as_string") else str(query)
        self.log.append(text)
        if "replication_set_table" in text and "set_att_list" in text:
            return list(self.reads.pop(0))
        return [("k",)] if "DELETE FROM" in text else []


def test_prune_locks_then_reads_the_sets_in_its_transaction_and_rolls_back_when_they_read_back_changed() -> None:
    session = _FakeSession([[("approved", None, None)], [("approved", None, None)]])
    side = TableSide(session, "public.technology", "id", ("id",), sql.SQL("true"))  # type: ignore[arg-type]
    delete_moved(side, ["k"], Engine.PGLOGICAL)
    lock = next(i for i, s in enumerate(session.log) if s.startswith("LOCK TABLE"))
    reads = [i for i, s in enumerate(session.log) if "set_att_list" in s]
    assert session.log[0] == "BEGIN" and session.log[-1] == "COMMIT"
    assert "SHARE ROW EXCLUSIVE" in session.log[lock] and lock < reads[0] and len(reads) == 2
    changed = _FakeSession([[("approved", None, None)], []])
    side = TableSide(changed, "public.technology", "id", ("id",), sql.SQL("true"))  # type: ignore[arg-type]
    with pytest.raises(PruneRefused, match="read back"):
        delete_moved(side, ["k"], Engine.PGLOGICAL)
    assert changed.log[-1] == "ROLLBACK"
