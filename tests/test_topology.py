"""Derived topology: edges, subscription names, forward_origins, per-node catalogs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler import topology
from reconciler.load import load_desired_state
from reconciler.render.topology import render_topology
from reconciler.topology import MAX_IDENTIFIER, subscription_name

EXAMPLE = Path(__file__).resolve().parent.parent / "desired-state"

names = st.from_regex(r"[a-z][a-z0-9_]{0,39}", fullmatch=True)


@st.composite
def trees(draw: st.DrawFn) -> dict[str, object]:
    """A valid desired state of 2-5 levels as plain data (one server per node)."""
    depth = draw(st.integers(min_value=2, max_value=5))
    levels = [f"l{i}" for i in range(depth)]
    all_names = draw(st.lists(names, min_size=depth, max_size=depth + 12, unique=True))
    nodes: dict[str, dict[str, object]] = {}
    by_level: list[list[str]] = [[] for _ in levels]
    # Top first so every lower node can pick an upstream one level higher.
    by_level[-1].append(all_names[0])
    rest = all_names[1:]
    for i in range(depth - 2, -1, -1):
        by_level[i].append(rest.pop())
    for name in rest:
        by_level[draw(st.integers(min_value=0, max_value=depth - 1))].append(name)
    for index, members in enumerate(by_level):
        for name in members:
            decl: dict[str, object] = {"level": levels[index]}
            if index < depth - 1:
                decl["upstream"] = draw(st.sampled_from(by_level[index + 1]))
            decl["dsn"] = f"host=10.0.0.{len(nodes) + 1} port=5432 dbname={name}"
            nodes[name] = decl
    return {
        "version": 1,
        "levels": levels,
        "nodes": nodes,
        "replication_sets": {"approved": {"tables": {"public.t": {"row_filter": "approved"}}}},
    }


@settings(max_examples=60, deadline=None)
@given(trees())
def test_generated_topologies_validate_and_derive_one_edge_per_non_top_node(
    data: dict[str, object],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with open(Path(tmp) / "state.yaml", "w") as handle:
            YAML().dump(data, handle)
        state = load_desired_state(Path(tmp))
    top = state.levels[-1]
    non_top = {n for n, d in state.nodes.items() if d.level != top}
    edges = topology.edges(state)
    assert len(edges) == len(non_top)
    assert {e.provider for e in edges} == non_top
    for edge in edges:
        assert state.nodes[edge.provider].upstream == edge.subscriber
        assert len(edge.subscription.encode()) <= MAX_IDENTIFIER
        has_children = bool(state.children(edge.provider))
        assert edge.forward_origins == (("all",) if has_children else ())
    assert len({(e.subscriber, e.subscription) for e in edges}) == len(edges)
    catalogs = topology.desired_catalogs(state)
    assert sum(len(c.subscriptions) for c in catalogs.values()) == len(edges)


@given(names, names)
def test_subscription_names_fit_and_are_distinct(subscriber: str, provider: str) -> None:
    name = subscription_name(subscriber, provider)
    assert len(name.encode()) <= MAX_IDENTIFIER
    assert name == subscription_name(subscriber, provider)
    if subscriber != provider:
        assert name != subscription_name(provider, subscriber)


def test_long_names_get_a_hash_suffix() -> None:
    a = subscription_name("s" * 40, "p" * 40 + "")
    b = subscription_name("s" * 40, "p" * 39 + "q")
    assert a != b
    assert len(a) <= MAX_IDENTIFIER
    assert a.startswith("s" * 24 + "_from_" + "p" * 24 + "_")
    assert subscription_name("region_east", "district_a") == "region_east_from_district_a"


def test_example_edges_and_forwarding() -> None:
    state = load_desired_state(EXAMPLE)
    edges = {(e.subscriber, e.provider): e for e in topology.edges(state)}
    assert set(edges) == {
        ("nation", "region_east"),
        ("nation", "region_west"),
        ("region_east", "district_a"),
        ("region_east", "district_b"),
        ("region_west", "district_c"),
        ("region_west", "district_d"),
    }
    # District rows must cross the region to the nation: forward all there.
    assert edges[("nation", "region_east")].forward_origins == ("all",)
    assert edges[("region_east", "district_a")].forward_origins == ()


def test_installed_filter_is_the_re_emitted_text() -> None:
    declared = r"status = 'it''s \' OR title = $x$'$x$"
    native = r"""(("status" = E'it''s \\') OR ("title" = ''''))"""
    assert topology.installed_filter(declared, "native") == native
    assert topology.installed_filter(declared, "pglogical") == f"({native} IS NOT FALSE)"
    assert topology.installed_filter(None, "native") is None


def test_desired_catalog_installs_filters_that_pass_deletes() -> None:
    state = load_desired_state(EXAMPLE)
    catalog = topology.desired_catalogs(state)["district_a"]
    approved = catalog.sets["approved"]
    # Installed as the tool writes it out again, never as declared.
    assert approved.tables["public.technology"].row_filter == '("approved" IS NOT FALSE)'
    assert approved.tables["public.approach"].columns == (
        "district",
        "id",
        "status",
        "title",
        "updated_at",
    )
    # Never TRUNCATE unless declared: one district's TRUNCATE would empty a region table.
    assert approved.replicate_truncate is False
    assert catalog.subscriptions == {}
    nation = topology.desired_catalogs(state)["nation"]
    assert sorted(nation.subscriptions) == ["nation_from_region_east", "nation_from_region_west"]


def test_describe_is_deterministic() -> None:
    state = load_desired_state(EXAMPLE)
    assert render_topology(state) == render_topology(load_desired_state(EXAMPLE))
    assert "region_east <- district_a" in render_topology(state)
