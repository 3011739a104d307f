"""Renderers: golden text, JSON schema, Markdown, determinism, no secrets (no servers)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from strategies import desired_and_live, reordered

from reconciler.actions import (
    Action,
    AddTable,
    AlterSubscription,
    CreateNode,
    CreateSet,
    CreateSubscription,
    DropSubscription,
    ReplaceTable,
)
from reconciler.apply import ApplyReport, Outcome, Status
from reconciler.diff import diff
from reconciler.model import NodeCatalog, ReplicationSet, SetTable, Subscription
from reconciler.plan import Plan, order
from reconciler.preflight import Blocker
from reconciler.render.apply import render_apply_report
from reconciler.render.plan_json import render_json
from reconciler.render.plan_markdown import render_markdown
from reconciler.render.plan_text import render_text

F = SetTable(row_filter="(approved) IS NOT FALSE")
NATION_SUB = Subscription(
    name="nation_from_region",
    provider_node="region",
    provider_dsn="host=region dbname=region",
    replication_sets=("approved",),
    forward_origins=("all",),
)
ACTIONS: list[Action] = [
    CreateNode(node="district_a", name="district_a", dsn="host=a dbname=a"),
    CreateSet(node="district_a", set=ReplicationSet(name="approved")),
    AddTable(node="district_a", set_name="approved", table="public.t", spec=F, synchronize_data=False),
    ReplaceTable(
        node="region",
        set_name="approved",
        table="public.t",
        before=SetTable(row_filter="(a || b) IS NOT FALSE"),
        after=F,
    ),
    AddTable(node="region", set_name="approved", table="public.u", spec=SetTable(columns=("id", "x"))),
    DropSubscription(node="region", name="region_from_old", provider_node="old"),
    AlterSubscription(
        node="nation", before=NATION_SUB.model_copy(update={"enabled": False}), after=NATION_SUB
    ),
]


def sample_plan(**extra: object) -> Plan:
    fields: dict[str, object] = {
        "tool_version": "0.1.0",
        "desired_commit": "0123456789abcdef",
        "actions": tuple(order(ACTIONS)),
        "nodes": ("district_a", "nation", "region"),
        "blockers": (
            Blocker(node="region", table="public.t", message="column approved allows NULL"),
            Blocker(node="nation", table=None, message="wal_level is replica, not logical"),
        ),
        "unreachable": {"district_b": "timeout after 10 s"},
    }
    fields.update(extra)
    return Plan.model_validate(fields)


GOLDEN_TEXT = """\
reconcile will perform the following actions
(run in dependency order across nodes; listed here per node):

node district_a:
  + pglogical node district_a
  + replication set approved (insert,update,delete)
  + table public.t in set approved filter=(approved) IS NOT FALSE

node nation:
  ~ subscription nation_from_region: enable

node region:
  - subscription region_from_old <- old [slot dropped: WAL released] [destructive]
  + table public.u in set approved columns=[id,x] [initial copy]
  ~ table public.t in set approved: filter=(a || b) IS NOT FALSE -> filter=(approved) IS NOT FALSE [needs verify]

Error: node nation: wal_level is replica, not logical
Error: node region, table public.t: column approved allows NULL

Not planned: 1 node did not answer:
  district_b: timeout after 10 s

Note: 1 action(s) marked [needs verify] change which rows a subscriber should hold without \
copying them; apply verifies and repairs those tables at the end (unless --no-repair).
Note: 1 destructive action(s) run only with `reconcile apply --allow-destroy`.

Plan: 4 to add, 2 to change, 1 to destroy.
"""


# -- text -----------------------------------------------------------------------------


def test_text_golden() -> None:
    assert render_text(sample_plan()) == GOLDEN_TEXT


def test_text_no_changes_is_exactly_one_line() -> None:
    plan = Plan(tool_version="0.1.0", nodes=("a", "b"))
    assert render_text(plan) == "No changes. Live state matches the desired state.\n"


def test_text_only_unreachable_still_prints_a_summary() -> None:
    plan = Plan(tool_version="0.1.0", nodes=("a",), unreachable={"b": "connection refused"})
    assert render_text(plan) == (
        "Not planned: 1 node did not answer:\n"
        "  b: connection refused\n"
        "\n"
        "Plan: 0 to add, 0 to change, 0 to destroy.\n"
    )


def test_text_create_subscription_is_labelled_initial_copy() -> None:
    plan = Plan(
        tool_version="0.1.0",
        actions=(CreateSubscription(node="nation", subscription=NATION_SUB),),
    )
    assert (
        "  + subscription nation_from_region <- region sets={approved} forward_origins={all}"
        " [initial copy]\n" in render_text(plan)
    )


def test_no_render_prints_a_password() -> None:
    secret_sub = NATION_SUB.model_copy(update={"provider_dsn": "postgresql://u:hunter2@r/db"})
    plan = sample_plan(
        actions=(
            CreateNode(node="a", name="a", dsn="host=a password=hunter2"),
            CreateSubscription(node="nation", subscription=secret_sub),
        ),
        unreachable={"b": "could not connect with 'host=b password=hunter2'"},
        blockers=(Blocker(node="c", message="dsn postgresql://u:hunter2@c/db refused"),),
    )
    for render in (render_text, render_json, render_markdown):
        assert "hunter2" not in render(plan), render.__name__


# -- json -----------------------------------------------------------------------------


def test_json_schema() -> None:
    text = render_json(sample_plan(fingerprints={"region": "f" * 64}))
    doc = json.loads(text)
    assert text == json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert doc["format_version"] == 1 and doc["tool_version"] == "0.1.0"
    assert doc["desired_commit"] == "0123456789abcdef"
    assert doc["summary"] == {
        "to_add": 4,
        "to_change": 2,
        "to_destroy": 1,
        "has_changes": True,
        "destructive": 1,
        "blockers": 2,
        "unreachable": 1,
    }
    assert doc["nodes"] == ["district_a", "nation", "region"]
    assert doc["unreachable"] == {"district_b": "timeout after 10 s"}
    assert doc["fingerprints"] == {"region": "f" * 64}
    assert doc["blockers"][0] == {
        "node": "nation",
        "table": None,
        "message": "wal_level is replica, not logical",
    }
    first = doc["actions"][0]
    assert first == {
        "node": "region",
        "kind": "drop_subscription",
        "symbol": "-",
        "subject": "subscription region_from_old",
        "description": "subscription region_from_old <- old",
        "destructive": True,
        "data_movement": "slot_dropped",
        "name": "region_from_old",
        "provider_node": "old",
    }
    replace = next(a for a in doc["actions"] if a["kind"] == "replace_table")
    assert replace["before"] == {"row_filter": "(a || b) IS NOT FALSE", "columns": None}
    assert replace["data_movement"] == "resync_needed" and replace["symbol"] == "~"


def test_json_of_an_empty_plan() -> None:
    doc = json.loads(render_json(Plan(tool_version="0.1.0")))
    assert doc["actions"] == [] and doc["summary"]["has_changes"] is False


# -- markdown -------------------------------------------------------------------------


def test_markdown_sections() -> None:
    md = render_markdown(sample_plan())
    assert md.startswith("### reconcile plan\n\n**Plan: 4 to add, 2 to change, 1 to destroy.**")
    assert "desired state at `0123456789ab`" in md
    assert "- node `region`, table `public.t`: column approved allows NULL\n" in md
    assert "| `district_b` | timeout after 10 s |\n" in md
    assert "#### node `region`\n" in md
    # A pipe inside a filter must not split the table row.
    assert "filter=(a \\|\\| b) IS NOT FALSE" in md
    assert (
        "| `-` destroy | subscription region_from_old <- old | slot dropped: WAL released | **yes** |\n" in md
    )
    assert "#### :warning: Data movement" in md and "run `reconcile verify` after apply" in md
    assert md.index("#### node `district_a`") < md.index("#### node `nation`")


def test_markdown_no_changes() -> None:
    md = render_markdown(Plan(tool_version="0.1.0"))
    assert md == "### reconcile plan\n\n**No changes. Live state matches the desired state.** (tool 0.1.0)\n"


# -- determinism ----------------------------------------------------------------------


def plan_of(desired: dict[str, NodeCatalog], live: dict[str, NodeCatalog]) -> Plan:
    return Plan(
        tool_version="0.1.0",
        actions=tuple(diff(desired, live)),
        nodes=tuple(sorted(desired)),
        fingerprints={n: f"{n:0>64}" for n in live},
    )


@settings(max_examples=100)
@given(desired_and_live())
def test_renders_are_byte_identical_whatever_the_dict_order(
    pair: tuple[dict[str, NodeCatalog], dict[str, NodeCatalog]],
) -> None:
    desired, live = pair
    a, b = plan_of(desired, live), plan_of(reordered(desired), reordered(live))
    for render in (render_text, render_json, render_markdown):
        assert render(a) == render(b)
    summary = render_text(a).splitlines()[-1]
    if a.actions:
        s = a.summary
        assert summary == f"Plan: {s.to_add} to add, {s.to_change} to change, {s.to_destroy} to destroy."
    else:
        assert summary == "No changes. Live state matches the desired state."


def test_apply_report_says_per_node_what_failed_once_and_what_waits_on_whom() -> None:
    create, drop = ACTIONS[0], ACTIONS[5]
    after_failure = ApplyReport(
        outcomes=[
            Outcome(create, Status.DONE),
            Outcome(ACTIONS[1], Status.FAILED, "boom"),
            Outcome(ACTIONS[2], Status.WAITING, "not run", waiting_on="district_a"),
            Outcome(drop, Status.HELD_BACK),
        ],
        remaining=[ACTIONS[1], ACTIONS[2], drop],
        unreachable_after={"region": "refused"},
    )
    assert render_apply_report(after_failure) == (
        "\n"
        "Apply: 1 done, 1 failed, 1 waiting, 0 not started, 1 held back, 0 blocked.\n"
        "  district_a: failed: + replication set approved (insert,update,delete): boom\n"
        "  district_a: not run after that failure: 1 action(s)\n"
        "      + table public.t in set approved filter=(approved) IS NOT FALSE\n"
        "  held back (needs --allow-destroy): region: - subscription region_from_old <- old\n"
        "  could not re-read region: refused\n"
        "Still different after apply:\n"
        "  district_a: + replication set approved (insert,update,delete)\n"
        "  district_a: + table public.t in set approved filter=(approved) IS NOT FALSE\n"
        "  region: - subscription region_from_old <- old\n"
        "Rerun `reconcile apply` once the cause is fixed: it converges from where this stopped.\n"
    )
    # A node waiting on another names it, with its actions listed under it.
    waiting = ApplyReport(
        outcomes=[
            Outcome(ACTIONS[1], Status.FAILED, "boom"),
            Outcome(drop, Status.WAITING, "waiting on district_a", waiting_on="district_a"),
        ],
        remaining=[ACTIONS[1], drop],
    )
    assert "  region: waiting on district_a: 1 action(s)\n      - subscription region_from_old <- old\n" in (
        render_apply_report(waiting)
    )
    # Only the held-back drop is left: converged, and it says what was held back.
    held = ApplyReport(
        outcomes=[Outcome(create, Status.DONE), Outcome(drop, Status.HELD_BACK)], remaining=[drop]
    )
    assert render_apply_report(held).endswith(
        "\nconverged: catalogs and rows (except what was held back)\n  rows: no action needed a check\n"
    )
