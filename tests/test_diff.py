"""Pure diff: one test per kind of drift, and properties over random states (no servers)."""

from __future__ import annotations

import typing
from pathlib import Path

from hypothesis import given, settings
from simulate import SimulationError, simulate
from strategies import desired_and_live, desired_states, reordered

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
    RemoveTable,
    ReplaceSubscription,
    ReplaceTable,
)
from reconciler.diff import diff, diff_node
from reconciler.load import load_desired_state
from reconciler.model import NodeCatalog, ReplicationSet, SetTable, Subscription
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
    action = one(diff_node("r", R, with_set(R, tables={})))
    assert isinstance(action, AddTable) and action.synchronize_data
    assert action.data_movement is DataMovement.INITIAL_COPY


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
