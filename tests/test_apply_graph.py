"""Pure: apply's dependency graph (apply/graph.py) and row scope (apply/rows.py), checked by the simulator.

The property that matters: whatever order a concurrent walk picks among the
orders the graph allows, the network converges exactly as in plan order.
The simulator refuses what the servers refuse (a subscription before its
provider's set, a set dropped while subscribed, ...), so a missing edge
shows up as a SimulationError.
"""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from simulate import simulate_live
from strategies import networks

from reconciler.actions import (
    Action,
    AddTable,
    CreateNode,
    CreateSet,
    CreateSubscription,
    DropNode,
    DropSubscription,
    ReplaceSubscription,
    RunMigration,
    SwitchSubscription,
)
from reconciler.apply.graph import dependencies, provider_of
from reconciler.apply.rows import row_scope
from reconciler.diff import Desired, changes
from reconciler.live import LiveNode
from reconciler.load import load_desired_state
from reconciler.model import Engine, ReplicationSet, SetTable, Subscription
from reconciler.plan import order, phase_index

REPO = Path(__file__).resolve().parent.parent


def _sub(subscriber: str, provider: str) -> Subscription:
    return Subscription(
        name=f"{subscriber}_from_{provider}",
        provider_node=provider,
        provider_dsn=f"host={provider}",
        replication_sets=("approved",),
        forward_origins=(),
    )


def test_unlinked_nodes_wait_for_nothing_of_each_other() -> None:
    actions = order(
        [CreateNode(node=n, name=n, dsn=f"host={n}") for n in ("d1", "d2", "d3")]
        + [CreateSet(node=n, set=ReplicationSet(name="approved")) for n in ("d1", "d2", "d3")]
    )
    waits = dependencies(actions)
    for index, action in enumerate(actions):
        assert all(actions[w].node == action.node for w in waits[index]), (action, waits[index])


def test_a_subscription_waits_for_its_providers_tables_and_nothing_else() -> None:
    table = AddTable(node="d1", set_name="approved", table="public.t", spec=SetTable())
    other = AddTable(node="d2", set_name="approved", table="public.t", spec=SetTable())
    sub = CreateSubscription(node="r", subscription=_sub("r", "d1"))
    actions = order([table, other, sub, CreateSet(node="d1", set=ReplicationSet(name="approved"))])
    waits = dependencies(actions)
    index = actions.index(sub)
    assert [actions[w] for w in waits[index]] == [table]


@settings(max_examples=200, deadline=None)
@given(networks(), st.randoms(use_true_random=False))
def test_any_order_the_graph_allows_converges(
    pair: tuple[Desired, dict[str, LiveNode]], rnd: random.Random
) -> None:
    desired, live = pair
    actions = order(changes(desired, live))
    waits = dependencies(actions)
    for index, before in enumerate(waits):
        assert all(w < index for w in before)
        for w in before:
            a, b = actions[w], actions[index]
            if isinstance(a, RunMigration) and isinstance(b, RunMigration) and a.node != b.node:
                # The same migration, on a node the diff put before this one (a tier above, or below).
                assert a.migration == b.migration and a.node in b.after, (a, b)
                continue
            if isinstance(a, SwitchSubscription) and isinstance(b, SwitchSubscription):
                # Engine switch, subscribers first: b's node is a's provider.
                assert provider_of(a) == b.node and a.step < b.step, (a, b)
                continue
            if a.node != b.node:
                # A subscription waits on its provider; a provider's action on a subscriber's subscription.
                nodes = {x.node for x in actions}
                aliases = {x.name: x.node for x in actions if isinstance(x, DropNode) and x.name not in nodes}
                pa, pb = provider_of(a), provider_of(b)
                moved = a.kind == "drop_subscription" and aliases.get(pa or "", pa) == aliases.get(
                    pb or "", pb
                )
                # A drop_node waits for every drop of a subscription to its name (two clones may hold it).
                by_name = isinstance(b, DropNode) and a.kind == "drop_subscription" and pa == b.name
                assert (
                    aliases.get(pb or "", pb) == a.node or aliases.get(pa or "", pa) == b.node or moved or by_name
                ), (
                    a,
                    b,
                )
                assert phase_index(a.kind) < phase_index(b.kind), (a, b)
    # A random walk of the graph: any action whose waits are all done may go next.
    done: set[int] = set()
    walk: list[Action] = []
    while len(walk) < len(actions):
        ready = [i for i in range(len(actions)) if i not in done and set(waits[i]) <= done]
        pick = rnd.choice(ready)
        done.add(pick)
        walk.append(actions[pick])
    after = simulate_live(live, walk, engine=desired.engine)
    assert {k: n.catalog for k, n in after.items()} == {k: n.catalog for k, n in desired.nodes.items()}
    assert changes(desired, after) == []


@settings(max_examples=100, deadline=None)
@given(networks(Engine.NATIVE), st.randoms(use_true_random=False))
def test_any_order_the_graph_allows_converges_natively(
    pair: tuple[Desired, dict[str, LiveNode]], rnd: random.Random
) -> None:
    test_any_order_the_graph_allows_converges.hypothesis.inner_test(pair, rnd)  # type: ignore[attr-defined]


def test_row_scope_is_the_subscriber_and_the_sets_tables_of_a_subscription_made_without_copy() -> None:
    state = load_desired_state(REPO / "desired-state")
    sub = _sub("region_east", "district_a")
    without_copy = CreateSubscription(node="region_east", subscription=sub, copy_data=False)
    with_copy = CreateSubscription(node="region_west", subscription=_sub("region_west", "district_c"))
    replaced = ReplaceSubscription(
        node="nation", before=_sub("nation", "region_west"), after=_sub("nation", "region_west")
    )
    scope = row_scope(state, [without_copy, with_copy, replaced])
    tables = frozenset(state.replication_sets["approved"].tables)
    # region_east's repair travels on to the nation, which is checked too.
    assert scope.tables == {"nation": tables, "region_east": tables}
    assert row_scope(state, [without_copy]).tables == {"nation": tables, "region_east": tables}
    # A table added again where a subscription marks it synced: that provider's subscribers, that table.
    again = AddTable(
        node="district_a", set_name="approved", table="public.technology", spec=SetTable(),
        synced_at=("region_east_from_district_a",),
    )  # fmt: skip
    assert row_scope(state, [again]).tables == {
        "region_east": frozenset({"public.technology"}),
        "nation": frozenset({"public.technology"}),
    }
    assert row_scope(state, [with_copy]).tables == {}


def test_a_moved_node_gets_its_new_path_only_after_the_old_one_is_gone() -> None:
    old = DropSubscription(node="r1", name="r1_from_b", provider_node="b")
    new = CreateSubscription(node="r2", subscription=_sub("r2", "b"))
    actions = order([new, old])
    waits = dependencies(actions)
    assert [actions[w] for w in waits[actions.index(new)]] == [old]


def test_an_engine_switch_goes_subscribers_first_whatever_the_names() -> None:
    """A pglogical subscriber must not see its provider's changes arrive there through a native
    subscription (pglogical 2.4 crashes on the forwarded origin name): the top switches first."""
    from reconciler.diff.desired import DesiredNode
    from reconciler.model import NodeCatalog

    def sub(subscriber: str, provider: str, origins: tuple[str, ...]) -> Subscription:
        return _sub(subscriber, provider).model_copy(update={"forward_origins": origins})

    # "z_nation" <- "a_region" <- "m_district": name order is not tier order.
    edges = {"z_nation": "a_region", "a_region": "m_district"}
    upstream = {"a_region": "z_nation", "m_district": "a_region"}
    desired = Desired(
        engine=Engine.NATIVE,
        nodes={
            n: DesiredNode(
                catalog=NodeCatalog(
                    subscriptions={f"{n}_from_{p}": sub(n, p, ("all",)) for p in edges.get(n, "").split()}
                ),
                upstream=upstream.get(n),
            )
            for n in ("z_nation", "a_region", "m_district")
        },
    )
    live = {
        n: LiveNode(
            catalog=NodeCatalog(
                legacy_subscriptions={f"{n}_from_{p}": sub(n, p, ()) for p in edges.get(n, "").split()}
            )
        )
        for n in desired.nodes
    }
    actions = [a for a in changes(desired, live) if isinstance(a, SwitchSubscription)]
    assert [(a.node, a.step) for a in actions] == [("z_nation", 0), ("a_region", 1)]
    everything = changes(desired, live)
    waits = dependencies(everything)
    region = next(i for i, a in enumerate(everything) if a.kind == "switch_subscription" and a.node == "a_region")
    nation = next(i for i, a in enumerate(everything) if a.kind == "switch_subscription" and a.node == "z_nation")
    assert nation in waits[region]
