"""Pure diff: one test per kind of drift, and properties over random states (no servers)."""

from __future__ import annotations

import typing
from pathlib import Path

from hypothesis import given, settings
from simulate import SimulationError, simulate, simulate_live
from strategies import desired_and_live, desired_networks, desired_states, networks, reordered, settled

from reconciler.actions import (
    Action,
    AddTable,
    AlterSet,
    AlterSubscription,
    ChangeNodeDsn,
    CreateSet,
    CreateSubscription,
    DataMovement,
    DropNode,
    DropSet,
    DropSlot,
    DropSubscription,
    RefreshSubscription,
    RemoveTable,
    ReplaceSubscription,
    ReplaceTable,
    SetWalKeepSize,
)
from reconciler.diff import Desired, DesiredNode, changes, diff, diff_node
from reconciler.live import LiveNode, SlotStatus, SubscriptionFacts
from reconciler.load import load_desired_state
from reconciler.model import Engine, NodeCatalog, ReplicationSet, SetTable, Subscription
from reconciler.plan import PHASES, order
from reconciler.topology import desired_catalogs

REPO = Path(__file__).resolve().parent.parent

T_APPROVED = SetTable(row_filter="(approved) IS NOT FALSE")
SUB = Subscription(
    name="r_from_d",
    provider_node="d",
    provider_dsn="host=d dbname=d",
    replication_sets=("approved",),
    forward_origins=(),
)
R = NodeCatalog(
    node_name="r",
    dsn="host=r dbname=r",
    sets={"approved": ReplicationSet(name="approved", tables={"public.t": T_APPROVED})},
    subscriptions={SUB.name: SUB},
)


def one(actions: list[Action]) -> Action:
    assert len(actions) == 1, actions
    return actions[0]


def with_set(cat: NodeCatalog, **changes: object) -> NodeCatalog:
    new_set = cat.sets["approved"].model_copy(update=changes)
    return cat.model_copy(update={"sets": {"approved": new_set}})


def with_sub(cat: NodeCatalog, **changes: object) -> NodeCatalog:
    return cat.model_copy(update={"subscriptions": {SUB.name: SUB.model_copy(update=changes)}})


# -- one precise action per kind of drift ---------------------------------------------


def test_in_sync_is_empty() -> None:
    assert diff_node("r", R, R) == []


def test_missing_node_creates_everything_without_copying_twice() -> None:
    actions = order(diff_node("r", R, NodeCatalog()))
    assert [a.kind for a in actions] == [
        "create_node",
        "create_set",
        "add_table",
        "create_subscription",
    ]
    create_set = actions[1]
    assert isinstance(create_set, CreateSet) and create_set.set.tables == {}
    add = actions[2]
    # A brand-new set: the subscription's initial copy brings the rows.
    assert isinstance(add, AddTable) and not add.synchronize_data
    assert add.data_movement is DataMovement.NONE


def test_other_node_name_drops_it_after_its_subscriptions_then_creates() -> None:
    live = R.model_copy(update={"node_name": "old", "orphan_slots": ("pgl_x",)})
    actions = order(diff_node("r", R, live))
    assert [a.kind for a in actions] == [
        "drop_subscription",
        "drop_slot",
        "drop_node",
        "create_node",
        "create_set",
        "add_table",
        "create_subscription",
    ]
    drop = actions[2]
    assert isinstance(drop, DropNode) and drop.name == "old" and drop.destructive


def test_changed_dsn() -> None:
    action = one(diff_node("r", R, R.model_copy(update={"dsn": "host=elsewhere dbname=r"})))
    assert isinstance(action, ChangeNodeDsn)
    assert (action.before, action.after) == ("host=elsewhere dbname=r", "host=r dbname=r")


def test_changed_flags_alter_the_set_only() -> None:
    action = one(diff_node("r", R, with_set(R, replicate_truncate=True)))
    assert isinstance(action, AlterSet)
    assert action.before.replicate_truncate and not action.after.replicate_truncate
    assert "insert,update,delete,truncate -> insert,update,delete" in action.describe()


def test_extra_set_is_dropped_without_its_tables() -> None:
    extra = ReplicationSet(name="extra", tables={"public.t": SetTable(), "public.u": SetTable()})
    live = R.model_copy(update={"sets": {**R.sets, "extra": extra}})
    action = one(diff_node("r", R, live))
    assert isinstance(action, DropSet) and action.name == "extra" and action.destructive


def test_extra_table_in_set_is_removed() -> None:
    live = with_set(R, tables={**R.sets["approved"].tables, "public.u": SetTable()})
    action = one(diff_node("r", R, live))
    assert isinstance(action, RemoveTable) and action.table == "public.u" and action.destructive


def test_missing_table_in_existing_set_is_added_with_copy() -> None:
    action = one(diff_node("r", R, with_set(R, tables={}), subscribed_sets=("approved",)))
    assert isinstance(action, AddTable) and action.synchronize_data
    assert action.data_movement is DataMovement.INITIAL_COPY


def test_table_added_to_a_set_nobody_subscribes_is_no_copy() -> None:
    # No subscriber: add_table copies nothing, so no [initial copy] label;
    # a subscription created later copies the table with the rest.
    action = one(diff_node("r", R, with_set(R, tables={})))
    assert isinstance(action, AddTable) and not action.synchronize_data
    assert action.data_movement is DataMovement.NONE
    # A declared subscriber that was not read may be subscribed: copy, to be safe.
    unread = Desired(nodes={"r": DesiredNode(catalog=R), "x": DesiredNode(catalog=NodeCatalog(subscriptions={
        "x_from_r": SUB.model_copy(update={"name": "x_from_r", "provider_node": "r"})}))})  # fmt: skip
    add = one(changes(unread, {"r": LiveNode(catalog=with_set(R, tables={}))}))
    assert isinstance(add, AddTable) and add.data_movement is DataMovement.INITIAL_COPY


def test_changed_filter_replaces_the_table() -> None:
    hand = SetTable(row_filter="(status = 'x'::text) IS NOT FALSE")
    action = one(diff_node("r", R, with_set(R, tables={"public.t": hand})))
    assert isinstance(action, ReplaceTable)
    assert action.before == hand and action.after == T_APPROVED
    # One transaction on the provider: nothing lost, so a change (~) that runs
    # without --allow-destroy, labelled for verify.
    assert action.data_movement is DataMovement.RESYNC_NEEDED and action.symbol == "~"
    assert not action.destructive


def test_changed_columns_replace_the_table() -> None:
    cols = T_APPROVED.model_copy(update={"columns": ("approved", "id")})
    action = one(diff_node("r", R, with_set(R, tables={"public.t": cols})))
    assert isinstance(action, ReplaceTable) and action.before.columns == ("approved", "id")


def test_extra_subscription_is_dropped() -> None:
    extra = SUB.model_copy(update={"name": "r_from_x", "provider_node": "x"})
    live = R.model_copy(update={"subscriptions": {**R.subscriptions, extra.name: extra}})
    action = one(diff_node("r", R, live))
    assert isinstance(action, DropSubscription)
    assert (action.name, action.provider_node) == ("r_from_x", "x")
    assert action.data_movement is DataMovement.SLOT_DROPPED


def test_missing_subscription_is_created() -> None:
    action = one(diff_node("r", R, R.model_copy(update={"subscriptions": {}})))
    assert isinstance(action, CreateSubscription) and action.subscription == SUB


def test_disabled_subscription_is_enabled_in_place() -> None:
    action = one(diff_node("r", R, with_sub(R, enabled=False)))
    assert isinstance(action, AlterSubscription) and not action.destructive
    assert action.describe() == "subscription r_from_d: enable"


def test_changed_sets_and_dsn_alter_in_place() -> None:
    live = with_sub(R, replication_sets=("approved", "old"), provider_dsn="host=old dbname=d")
    action = one(diff_node("r", R, live))
    assert isinstance(action, AlterSubscription)
    assert action.describe() == (
        "subscription r_from_d: remove sets old; provider dsn changes (new interface)"
    )


def test_sets_in_another_order_are_in_sync() -> None:
    want = with_sub(R, replication_sets=("a", "b"))
    assert diff_node("r", want, with_sub(R, replication_sets=("b", "a"))) == []


def test_changed_forward_origins_replace_the_subscription() -> None:
    action = one(diff_node("r", R, with_sub(R, forward_origins=("all",))))
    assert isinstance(action, ReplaceSubscription) and action.destructive
    assert action.describe() == "subscription r_from_d: forward_origins {all} -> {}"


def test_changed_provider_replaces_the_subscription() -> None:
    action = one(diff_node("r", R, with_sub(R, provider_node="e", enabled=False)))
    assert isinstance(action, ReplaceSubscription) and action.after == SUB


def test_orphan_slots_are_dropped_each() -> None:
    actions = diff_node("r", R, R.model_copy(update={"orphan_slots": ("pgl_b", "pgl_a")}))
    assert [(a.kind, a.subject) for a in order(actions)] == [
        ("drop_slot", "slot pgl_a"),
        ("drop_slot", "slot pgl_b"),
    ]
    assert all(isinstance(a, DropSlot) and a.destructive for a in actions)


def test_diff_only_covers_nodes_in_both() -> None:
    assert diff({"r": R, "x": R}, {"r": R, "y": NodeCatalog()}) == []


def test_example_desired_state_from_scratch_simulates_to_desired() -> None:
    desired = desired_catalogs(load_desired_state(REPO / "desired-state"))
    live = {name: NodeCatalog() for name in desired}
    actions = diff(desired, live)
    assert simulate(live, actions) == desired
    assert diff(desired, simulate(live, actions)) == []


def test_phases_cover_every_action_kind_once() -> None:
    # Every member of the Action union, so a new action kind cannot miss its phase.
    union = typing.get_args(typing.get_args(Action)[0])
    kinds = {cls.model_fields["kind"].default for cls in union}
    assert len(kinds) == len(union) >= 15
    assert sorted(PHASES) == sorted(kinds) and len(PHASES) == len(set(PHASES))


def test_simulator_refuses_a_subscription_before_its_provider_set() -> None:
    # Keeps the simulator honest: the ordering properties below rely on it.
    live = {"r": R.model_copy(update={"subscriptions": {}}), "d": NodeCatalog()}
    desired = {"r": R, "d": NodeCatalog(node_name="d", dsn="host=d dbname=d", sets=R.sets)}
    actions = diff(desired, live)
    reversed_phases = sorted(actions, key=lambda a: a.kind != "create_subscription")
    try:
        simulate(live, reversed_phases)
    except SimulationError as exc:
        assert "provider d missing" in str(exc)
    else:
        raise AssertionError("simulator accepted a subscription before its provider")
    assert simulate(live, actions) == desired


# -- properties -------------------------------------------------------------------------


@settings(max_examples=200)
@given(desired_states())
def test_plan_of_a_state_against_itself_is_empty(state: dict[str, NodeCatalog]) -> None:
    assert diff(state, state) == []


@settings(max_examples=250)
@given(desired_and_live())
def test_applying_the_plan_yields_desired(
    pair: tuple[dict[str, NodeCatalog], dict[str, NodeCatalog]],
) -> None:
    desired, live = pair
    result = simulate(live, diff(desired, live))
    assert result == desired
    assert diff(desired, result) == []


@settings(max_examples=200)
@given(desired_and_live())
def test_diff_is_independent_of_insertion_order(
    pair: tuple[dict[str, NodeCatalog], dict[str, NodeCatalog]],
) -> None:
    desired, live = pair
    first = diff(desired, live)
    second = diff(reordered(desired), reordered(live))
    assert [a.model_dump_json() for a in first] == [a.model_dump_json() for a in second]


@settings(max_examples=250)
@given(desired_and_live())
def test_ordering_constraints_hold(
    pair: tuple[dict[str, NodeCatalog], dict[str, NodeCatalog]],
) -> None:
    desired, live = pair
    actions = diff(desired, live)
    phase = [PHASES.index(a.kind) for a in actions]
    assert phase == sorted(phase)
    for i, action in enumerate(actions):
        asked: list[tuple[str, str]] = []  # (provider, set) this action needs to exist
        if isinstance(action, CreateSubscription):
            asked = [(action.subscription.provider_node, s) for s in action.subscription.replication_sets]
        elif isinstance(action, AlterSubscription | ReplaceSubscription):
            asked = [(action.after.provider_node, s) for s in action.after.replication_sets]
        for provider, set_name in asked:
            for j, other in enumerate(actions):
                builds = (
                    isinstance(other, CreateSet) and other.set.name == set_name
                ) or (isinstance(other, AddTable) and other.set_name == set_name)
                if other.node == provider and builds:
                    assert j < i, (other, action)
        if isinstance(action, DropSet):
            for j, other in enumerate(actions):
                stops_using = (
                    isinstance(other, AlterSubscription)
                    and other.before.provider_node == action.node
                    and action.name in other.before.replication_sets
                ) or (isinstance(other, DropSubscription) and other.provider_node == action.node)
                if stops_using:
                    assert j < i, (other, action)


# -- the whole plan: live facts (slots, syncs, rows, settings) and network rules ------------

D = NodeCatalog(node_name="d", dsn="host=d dbname=d", sets=R.sets)
BARE_R = R.model_copy(update={"sets": {}})  # the region as subscriber only


def network(**per_node: LiveNode) -> dict[str, LiveNode]:
    """Both nodes in sync and settled, with per-node replacements."""
    live = {
        "d": LiveNode(catalog=D, slots={SUB.name: SlotStatus.RESERVED}),
        "r": LiveNode(catalog=BARE_R, subscriptions={SUB.name: SubscriptionFacts(slot=SUB.name)}),
    }
    live.update(per_node)
    return live


def wish(engine: Engine = Engine.PGLOGICAL, **nodes: DesiredNode) -> Desired:
    return Desired(
        engine=engine,
        nodes={"d": DesiredNode(catalog=D), "r": DesiredNode(catalog=BARE_R, upstream="d"), **nodes},
    )


def converges(desired: Desired, live: dict[str, LiveNode]) -> list[Action]:
    """The plan; asserts that running it yields desired and leaves nothing to do."""
    actions = changes(desired, live)
    after = simulate_live(live, actions, engine=desired.engine)
    assert {k: n.catalog for k, n in after.items()} == {k: n.catalog for k, n in desired.nodes.items()}
    assert changes(desired, after) == []
    return actions


def test_settled_network_is_empty() -> None:
    assert changes(wish(), network()) == []


def test_lost_slot_replaces_the_subscription_without_copy() -> None:
    live = network(d=LiveNode(catalog=D, slots={SUB.name: SlotStatus.LOST}))
    action = one(converges(wish(), live))
    assert isinstance(action, ReplaceSubscription) and action.destructive
    assert action.reason == f"slot {SUB.name} on d is lost (past max_slot_wal_keep_size): re-copy needed"
    assert action.data_movement is DataMovement.RESYNC_NEEDED


def test_missing_slot_replaces_and_supersedes_an_alter() -> None:
    drifted = BARE_R.model_copy(update={"subscriptions": {SUB.name: SUB.model_copy(update={"enabled": False})}})
    live = network(
        d=LiveNode(catalog=D),
        r=LiveNode(catalog=drifted, subscriptions={SUB.name: SubscriptionFacts(slot=SUB.name)}),
    )
    action = one(converges(wish(), live))
    assert isinstance(action, ReplaceSubscription) and action.reason == (
        f"slot {SUB.name} is missing on d: re-copy needed"
    )


def test_unfinished_sync_or_unread_provider_is_not_judged() -> None:
    unsynced = LiveNode(catalog=BARE_R, subscriptions={SUB.name: SubscriptionFacts(slot=SUB.name, synced=False)})
    assert changes(wish(), network(d=LiveNode(catalog=D), r=unsynced)) == []
    assert changes(wish(), {"r": network()["r"]}) == []


def test_slot_in_use_is_not_dropped_as_orphan() -> None:
    catalog = D.model_copy(update={"orphan_slots": (SUB.name,)})
    assert changes(wish(), network(d=LiveNode(catalog=catalog, slots={SUB.name: SlotStatus.RESERVED}))) == []


def test_drops_on_a_provider_wait_for_its_subscriber_to_be_read() -> None:
    extra = D.model_copy(update={"sets": {**D.sets, "old": ReplicationSet(name="old")}, "orphan_slots": ("pgl_x",)})
    live = network(d=LiveNode(catalog=extra, slots={SUB.name: SlotStatus.RESERVED, "pgl_x": SlotStatus.RESERVED}))
    both = converges(wish(), live)
    assert [a.kind for a in both] == ["drop_slot", "drop_set"]
    # d's upstream (here r, as the topology would say) not read: neither drop.
    alone = Desired(nodes={"d": DesiredNode(catalog=D, upstream="r")})
    assert changes(alone, {"d": live["d"]}) == []


def test_new_subscription_onto_rows_does_not_copy() -> None:
    live = network(r=LiveNode(catalog=NodeCatalog(node_name="r", dsn="host=r dbname=r"), holds_rows=True))
    create = next(a for a in converges(wish(), live) if isinstance(a, CreateSubscription))
    assert not create.copy_data and create.data_movement is DataMovement.RESYNC_NEEDED


def test_table_readded_where_the_subscriber_marks_it_synced_needs_verify() -> None:
    # Removed from the set by hand on the provider; the subscriber's
    # local_sync_status still holds the table: pglogical will not copy it again.
    hand = D.model_copy(update={"sets": {"approved": ReplicationSet(name="approved")}})
    facts = SubscriptionFacts(slot=SUB.name, tables_synced=("public.t",))
    live = network(d=LiveNode(catalog=hand, slots={SUB.name: SlotStatus.RESERVED}),
                   r=LiveNode(catalog=BARE_R, subscriptions={SUB.name: facts}))  # fmt: skip
    add = one(converges(wish(), live))
    assert isinstance(add, AddTable) and add.synced_at == ("r",)
    assert add.data_movement is DataMovement.RESYNC_NEEDED  # [needs verify], not [initial copy]
    assert "no copy to r" in add.describe()
    # Without that sync row the same add is a real copy.
    fresh = network(d=live["d"])
    add = one(converges(wish(), fresh))
    assert isinstance(add, AddTable) and add.data_movement is DataMovement.INITIAL_COPY


def test_simulator_refuses_an_initial_copy_label_that_pglogical_skips() -> None:
    hand = D.model_copy(update={"sets": {"approved": ReplicationSet(name="approved")}})
    facts = SubscriptionFacts(slot=SUB.name, tables_synced=("public.t",))
    live = network(d=LiveNode(catalog=hand, slots={SUB.name: SlotStatus.RESERVED}),
                   r=LiveNode(catalog=BARE_R, subscriptions={SUB.name: facts}))  # fmt: skip
    lying = AddTable(node="d", set_name="approved", table="public.t", spec=T_APPROVED)
    try:
        simulate_live(live, [lying])
    except SimulationError as exc:
        assert "already marks it synced" in str(exc)
    else:
        raise AssertionError("simulator accepted an initial copy that pglogical skips")


def test_native_table_added_to_a_publication_refreshes_its_subscribers() -> None:
    native_d = D.model_copy(update={"node_name": None, "dsn": None})
    native_r = BARE_R.model_copy(update={"node_name": None, "dsn": None})
    desired = wish(Engine.NATIVE, d=DesiredNode(catalog=native_d), r=DesiredNode(catalog=native_r, upstream="d"))
    smaller = native_d.model_copy(update={"sets": {"approved": ReplicationSet(name="approved")}})
    live = network(d=LiveNode(catalog=smaller, slots={SUB.name: SlotStatus.RESERVED}),
                   r=LiveNode(catalog=native_r, subscriptions={SUB.name: SubscriptionFacts(slot=SUB.name)}))  # fmt: skip
    actions = converges(desired, live)
    assert [a.kind for a in actions] == ["add_table", "refresh_subscription"]
    assert isinstance(actions[1], RefreshSubscription) and actions[1].data_movement is DataMovement.INITIAL_COPY
    # The copy is counted once: at the refresh, not at ADD TABLE.
    assert actions[0].data_movement is DataMovement.NONE
    try:
        simulate_live(live, actions[:1], engine=Engine.NATIVE)
    except SimulationError as exc:
        assert "never refreshed" in str(exc)
    else:
        raise AssertionError("simulator accepted a publication change no subscriber picks up")


def test_native_leftover_slot_of_a_new_subscription_is_dropped_first() -> None:
    native_d = D.model_copy(update={"node_name": None, "dsn": None})
    native_r = BARE_R.model_copy(update={"node_name": None, "dsn": None})
    desired = wish(Engine.NATIVE, d=DesiredNode(catalog=native_d), r=DesiredNode(catalog=native_r, upstream="d"))
    live = network(d=LiveNode(catalog=native_d, slots={SUB.name: SlotStatus.RESERVED}),
                   r=LiveNode(catalog=native_r.model_copy(update={"subscriptions": {}})))  # fmt: skip
    assert [(a.kind, a.node) for a in converges(desired, live)] == [
        ("drop_slot", "d"),
        ("create_subscription", "r"),
    ]


def test_wal_keep_size_once_per_server_and_converges() -> None:
    live = network(
        d=LiveNode(catalog=D, slots={SUB.name: SlotStatus.RESERVED}, system_identifier="s"),
        r=LiveNode(catalog=BARE_R, subscriptions={SUB.name: SubscriptionFacts(slot=SUB.name)}, system_identifier="s"),
    )
    desired = wish(d=DesiredNode(catalog=D, max_slot_wal_keep_size="64MB"),
                   r=DesiredNode(catalog=BARE_R, upstream="d", max_slot_wal_keep_size="64MB"))  # fmt: skip
    action = one(converges(desired, live))
    assert isinstance(action, SetWalKeepSize) and (action.node, action.before, action.after) == ("d", "-1", "64MB")


@settings(max_examples=150)
@given(desired_networks())
def test_whole_plan_of_a_settled_network_is_empty(desired: Desired) -> None:
    assert changes(desired, settled(desired)) == []


@settings(max_examples=150)
@given(desired_networks(Engine.NATIVE))
def test_whole_plan_of_a_settled_native_network_is_empty(desired: Desired) -> None:
    assert changes(desired, settled(desired)) == []


@settings(max_examples=300)
@given(networks())
def test_whole_plan_converges(pair: tuple[Desired, dict[str, LiveNode]]) -> None:
    """Lost and missing slots, unfinished syncs, rows, tables already synced, WAL settings: all of it."""
    converges(*pair)


@settings(max_examples=200)
@given(networks(Engine.NATIVE))
def test_whole_native_plan_converges(pair: tuple[Desired, dict[str, LiveNode]]) -> None:
    converges(*pair)
