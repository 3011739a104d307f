"""Plan: summary counts, holding back destroys, fingerprints, plan file, redaction (no servers)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from reconciler.actions import (
    Action,
    AddTable,
    AlterSet,
    AlterSubscription,
    ChangeKind,
    ChangeNodeDsn,
    CreateNode,
    CreateSet,
    CreateSubscription,
    DropNode,
    DropSet,
    DropSlot,
    DropSubscription,
    RemoveTable,
    ReplaceSubscription,
    ReplaceTable,
    SetWalKeepSize,
)
from reconciler.errors import PlanError
from reconciler.model import ReplicationSet, SetTable, Subscription
from reconciler.plan import Plan, load_plan, order, save_plan
from reconciler.preflight import Blocker
from reconciler.secrets import redact, redact_text

SUB = Subscription(
    name="r_from_d",
    provider_node="d",
    provider_dsn="host=d dbname=d",
    replication_sets=("approved",),
    forward_origins=(),
)
SET = ReplicationSet(name="approved")
FILTER = SetTable(row_filter="(approved) IS NOT FALSE")

# One action of every kind (14), as a diff could yield them.
EVERY_KIND: list[Action] = [
    CreateNode(node="d", name="d", dsn="host=d dbname=d"),
    ChangeNodeDsn(node="r", name="r", before="host=old dbname=r", after="host=r dbname=r"),
    DropNode(node="x", name="old_x"),
    CreateSet(node="d", set=SET),
    AlterSet(node="r", name="approved", before=SET.model_copy(update={"replicate_truncate": True}), after=SET),
    DropSet(node="r", name="extra"),
    AddTable(node="d", set_name="approved", table="public.t", spec=FILTER, synchronize_data=False),
    ReplaceTable(node="r", set_name="approved", table="public.t", before=SetTable(), after=FILTER),
    RemoveTable(node="r", set_name="approved", table="public.u"),
    CreateSubscription(node="n", subscription=SUB.model_copy(update={"name": "n_from_r", "provider_node": "r"})),
    ReplaceSubscription(node="r", before=SUB.model_copy(update={"forward_origins": ("all",)}), after=SUB),
    AlterSubscription(node="q", before=SUB.model_copy(update={"enabled": False}), after=SUB),
    DropSubscription(node="r", name="r_from_z", provider_node="z"),
    DropSlot(node="d", slot="pgl_d_z_sub"),
]  # fmt: skip


def make_plan(actions: list[Action], **extra: object) -> Plan:
    fields: dict[str, object] = {
        "tool_version": "0.1.0",
        "actions": tuple(order(actions)),
        "nodes": tuple(sorted({a.node for a in actions})),
    }
    fields.update(extra)
    return Plan.model_validate(fields)


# -- summary and selection ------------------------------------------------------------


def test_summary_counts_a_replace_as_one_add_and_one_destroy() -> None:
    plan = make_plan(EVERY_KIND)
    # + : create_node, create_set, add_table, create_subscription
    # ~ : change_node_dsn, alter_set, alter_subscription, replace_table (one transaction: nothing lost)
    # - : drop_node, drop_set, remove_table, drop_subscription, drop_slot
    # -/+ : replace_subscription
    assert (plan.to_add, plan.to_change, plan.to_destroy) == (4 + 1, 4, 5 + 1)
    assert plan.has_changes


def test_empty_plan() -> None:
    plan = make_plan([])
    assert not plan.has_changes and not plan.blockers
    assert (plan.to_add, plan.to_change, plan.to_destroy) == (0, 0, 0)


def test_destroys_are_held_back_unless_allowed() -> None:
    plan = make_plan(EVERY_KIND)
    destructive = {"drop_node", "drop_set", "remove_table", "replace_subscription",
                   "drop_subscription", "drop_slot"}  # fmt: skip
    assert {a.kind for a in plan.destroys} == destructive
    assert plan.held_back(allow_destroy=True) == ()
    assert {a.kind for a in plan.held_back(allow_destroy=False)} == destructive
    runnable = plan.runnable(allow_destroy=False)
    assert {a.kind for a in runnable} == {a.kind for a in EVERY_KIND} - destructive
    # Plan order is kept.
    assert list(runnable) == [a for a in plan.actions if not a.destructive]
    assert plan.runnable(allow_destroy=True) == plan.actions


def test_by_node_sorts_nodes_and_keeps_plan_order() -> None:
    plan = make_plan(EVERY_KIND)
    groups = plan.by_node()
    assert list(groups) == sorted(groups)
    assert [a.kind for a in groups["d"]] == ["drop_slot", "create_node", "create_set", "add_table"]


def test_order_is_independent_of_input_order() -> None:
    shuffled = EVERY_KIND[:]
    random.Random(7).shuffle(shuffled)
    assert order(shuffled) == order(EVERY_KIND)
    assert order(reversed(EVERY_KIND)) == order(EVERY_KIND)


# -- plan file ------------------------------------------------------------------------


def full_plan() -> Plan:
    return make_plan(
        EVERY_KIND,
        desired_commit="0123456789abcdef0123456789abcdef01234567",
        blockers=(Blocker(node="r", table="public.t", message="table is missing"),),
        unreachable={"z": "connection timed out after 10 s"},
        fingerprints={"d": "a" * 64, "r": "b" * 64},
    )


def test_save_load_round_trip(tmp_path: Path) -> None:
    plan = full_plan()
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    assert load_plan(path) == plan
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]  # no temp file left
    save_plan(plan, path)  # overwrites atomically
    assert load_plan(str(path)) == plan


def test_plan_file_never_holds_a_password(tmp_path: Path) -> None:
    secret_sub = SUB.model_copy(update={"provider_dsn": "postgresql://rep:s3cret@d:5432/d"})
    plan = make_plan(
        [
            CreateNode(node="d", name="d", dsn="host=d password=s3cret dbname=d"),
            ChangeNodeDsn(node="r", name="r", before="host=o password='s3 cret'", after="host=r"),
            CreateSubscription(node="r", subscription=secret_sub),
            AlterSubscription(node="q", before=secret_sub, after=SUB),
            ReplaceSubscription(node="p", before=SUB, after=secret_sub),
        ]
    )
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    text = path.read_text()
    assert "s3" not in text and "password" not in text
    loaded = load_plan(path)
    create = loaded.actions[0]
    assert isinstance(create, CreateNode) and create.dsn == "host=d dbname=d"
    subs = [a for a in loaded.actions if isinstance(a, CreateSubscription)]
    assert subs[0].subscription.provider_dsn == "postgresql://rep@d:5432/d"


def test_save_into_a_missing_directory_is_a_plan_error(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "plan.json"
    with pytest.raises(PlanError, match=str(target)):
        save_plan(full_plan(), target)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not JSON"),
        ("[]", "expected a JSON object"),
        ('{"format_version": 99}', "format_version 99"),
        ('{"format_version": 1, "tool_version": "x", "actions": [{"kind": "nuke"}]}', "actions.0"),
        ('{"format_version": 1}', "tool_version"),
    ],
)
def test_corrupt_plan_file_is_a_plan_error_naming_it(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_missing_plan_file_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot read plan file"):
        load_plan(tmp_path / "absent.json")


def test_truncated_plan_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(full_plan(), path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(PlanError, match="is not JSON"):
        load_plan(path)


def test_plan_file_is_json_with_version(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(full_plan(), path)
    raw = json.loads(path.read_text())
    assert raw["format_version"] == 1 and raw["desired_commit"].startswith("0123")
    assert [a["kind"] for a in raw["actions"]][:3] == ["drop_subscription", "drop_slot", "drop_node"]


# -- redaction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("host=a port=5432 dbname=x user=u", "host=a port=5432 dbname=x user=u"),
        ("host=a password=secret dbname=x", "host=a dbname=x"),
        ("password=secret host=a", "host=a"),
        ("host=a PASSWORD = secret", "host=a"),
        (r"host=a password='se cr\'et' dbname=x", "host=a dbname=x"),
        ("host=a sslpassword=keypw", "host=a"),
        ("postgresql://u:secret@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgres://u:p@ss@h/db?sslmode=require", "postgres://u@h/db?sslmode=require"),
        ("postgresql://:secret@h/db", "postgresql://h/db"),
        ("postgresql://u@h/db?password=secret", "postgresql://u@h/db"),
        ("postgresql://u@h/db?password=secret&sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("postgresql://u@h/db?a=1&password=secret&b=2", "postgresql://u@h/db?a=1&b=2"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://h1,h2/db", "postgresql://h1,h2/db"),
    ],
)
def test_redact(dsn: str, expected: str) -> None:
    assert redact(dsn) == expected


def test_redact_leaves_lookalike_keywords() -> None:
    assert redact("host=a user=password dbname=mypassword") == "host=a user=password dbname=mypassword"


def test_redact_text_finds_dsns_inside_messages() -> None:
    message = 'connection "host=a password=x1 dbname=d" and postgresql://u:x2@h/db failed'
    redacted = redact_text(message)
    assert "x1" not in redacted and "x2" not in redacted
    assert redacted == 'connection "host=a dbname=d" and postgresql://u@h/db failed'


def test_an_action_the_engine_cannot_run_is_a_plan_time_blocker() -> None:
    from reconciler.load import load_desired_state
    from reconciler.model import Engine
    from reconciler.planner import unsupported

    state = load_desired_state(Path(__file__).resolve().parent.parent / "desired-state")
    create = CreateNode(node="r", name="r", dsn="host=r")
    assert unsupported(state, [create]) == []
    native = state.model_copy(update={"engine": Engine.NATIVE})
    [blocker] = unsupported(native, [create])
    assert blocker.node == "r" and blocker.message.startswith("the native engine cannot + pglogical node r: ")


def test_summary_and_allow_destroy_agree() -> None:
    # Everything counted "to destroy" is held back without --allow-destroy,
    # and only a lowered WAL limit is held back besides (it counts as a change).
    lowered = SetWalKeepSize(node="d", before="-1", after="64MB")
    plan = make_plan([*EVERY_KIND, lowered])
    destroys = [a for a in plan.actions if a.change in (ChangeKind.DESTROY, ChangeKind.REPLACE)]
    assert plan.to_destroy == len(destroys) and all(a.destructive for a in destroys)
    held = plan.held_back(allow_destroy=False)
    assert [a for a in held if a not in destroys] == [lowered]
    assert {a.symbol for a in plan.actions} == {"+", "~", "-", "-/+"}
    assert all(a.symbol == a.change.symbol for a in plan.actions)
