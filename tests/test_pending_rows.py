"""Pure, no server: an action whose owed rows cannot be recorded does not run."""

from __future__ import annotations

from pathlib import Path

from reconciler.actions import AddTable
from reconciler.apply.executor import ApplyOptions, _record_owed
from reconciler.apply.rows import owed
from reconciler.load import load_desired_state
from reconciler.model import SetTable

REPO = Path(__file__).resolve().parent.parent


def test_an_action_whose_owed_rows_cannot_be_recorded_is_refused() -> None:
    state = load_desired_state(REPO / "desired-state")
    # A table added again where it is marked synced: region_east owes its rows.
    action = AddTable(
        node="district_a",
        set_name="approved",
        table="public.technology",
        spec=SetTable(),
        synced_at=("region_east",),
    )
    assert "region_east" in owed(state, action)
    # Nothing listens on the subscriber's port: the record cannot be written, so the action must not run.
    dsn = "host=127.0.0.1 port=1 dbname=region_east user=postgres"
    nodes = {**state.nodes, "region_east": state.nodes["region_east"].model_copy(update={"dsn": dsn})}
    state = state.model_copy(update={"nodes": nodes})
    reason = _record_owed(state, action, None, ApplyOptions(timeout=1.0))  # type: ignore[arg-type]
    assert reason is not None and reason.startswith(
        "not run: the rows it leaves region_east owing could not be recorded"
    )


def test_moves_that_share_a_step_wait_together() -> None:
    """b: r1 -> r2 and d: r3 -> r2 share the nation's replace of its subscription to r2 (r2 gains
    its first children): d's new edge blocked holds back b's steps too."""
    from reconciler.actions import CreateSubscription, DropSubscription, ReplaceSubscription
    from reconciler.apply.executor import Status, _with_their_moves
    from reconciler.model import Subscription
    from reconciler.plan import Plan, order

    def sub(subscriber: str, provider: str, origins: tuple[str, ...] = ()) -> Subscription:
        return Subscription(
            name=f"{subscriber}_from_{provider}",
            provider_node=provider,
            provider_dsn=f"host={provider}",
            replication_sets=("approved",),
            forward_origins=origins,
        )

    create_d = CreateSubscription(node="r2", subscription=sub("r2", "d"))
    actions = order(
        [
            DropSubscription(node="r1", name="r1_from_b", provider_node="b"),
            CreateSubscription(node="r2", subscription=sub("r2", "b")),
            DropSubscription(node="r3", name="r3_from_d", provider_node="d"),
            create_d,
            ReplaceSubscription(
                node="nation", before=sub("nation", "r2"), after=sub("nation", "r2", ("all",))
            ),
        ]
    )
    plan = Plan(tool_version="test", actions=tuple(actions))
    blocked = next(a for a in plan.actions if a == create_d)
    held = _with_their_moves(plan, plan.actions, {id(blocked): "blocked edge"})
    assert len(held) == 4  # every other step of both moves
    assert all(status is Status.BLOCKED for _, status in held.values())
    assert all("move b: r1 -> r2" in reason and "move d: r3 -> r2" in reason for reason, _ in held.values())
