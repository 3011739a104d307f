"""Pure: a node whose upstream changes is one planned move, in text, JSON and Markdown, from the diff's actions."""

from __future__ import annotations

import json

from reconciler.diff import diff
from reconciler.model import NodeCatalog, Subscription
from reconciler.moves import moves, retirements
from reconciler.plan import Plan
from reconciler.render.plan_json import render_json
from reconciler.render.plan_markdown import render_markdown
from reconciler.render.plan_text import render_text


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
