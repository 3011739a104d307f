"""`reconcile review`: semantic change, validation, risks, diagram and live plan between two git revisions."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import git
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from reconciler.actions import (
    AddTable,
    CreateSubscription,
    DataMovement,
    RefreshSubscription,
    ReplaceSubscription,
)
from reconciler.cli import app
from reconciler.model import DesiredState, NodeDecl, SetDecl, SetTable, Subscription, TableDecl
from reconciler.plan import Plan
from reconciler.render.plan_text import render_text
from reconciler.render.review_markdown import MAX_CHARS, render_review_markdown
from reconciler.render.review_mermaid import render_mermaid
from reconciler.render.review_sentences import summarise
from reconciler.review import Live, Review, semantic_change
from reconciler.review.build import Side
from reconciler.review.change import touched
from reconciler.review.plan_risk import copies, plan_risks
from reconciler.review.risk import RiskKind, change_risks, sort_risks

GOLDEN = Path(__file__).parent / "golden" / "review"
UPDATE = os.environ.get("REVIEW_UPDATE_GOLDEN") == "1"
AUTHOR = git.Actor("Review Test", "review@example.org")
WHEN = "1704067200 +0000"  # fixed author and date: the same content gives the same commit ids

# The example network; every DSN points at a closed loopback port (one per level).
TOPOLOGY = """\
version: 1
engine: pglogical
levels: [district, region, nation]

nodes:
  nation:
    level: nation
    dsn: "host=127.0.0.1 port=3 dbname=nation user=postgres"

  region_east:
    level: region
    upstream: nation
    dsn: "host=127.0.0.1 port=2 dbname=region_east user=postgres"
  region_west:
    level: region
    upstream: nation
    dsn: "host=127.0.0.1 port=2 dbname=region_west user=postgres"

  district_a:
    level: district
    upstream: region_east
    dsn: "host=127.0.0.1 port=1 dbname=district_a user=postgres"
  district_b:
    level: district
    upstream: region_east
    dsn: "host=127.0.0.1 port=1 dbname=district_b user=postgres"
  district_c:
    level: district
    upstream: region_west
    dsn: "host=127.0.0.1 port=1 dbname=district_c user=postgres"
  district_d:
    level: district
    upstream: region_west
    dsn: "host=127.0.0.1 port=1 dbname=district_d user=postgres"
"""
REPLICATION = """\
replication_sets:
  approved:
    replicate: [insert, update, delete]
    tables:
      public.technology:
        row_filter: "approved"
      public.approach:
        row_filter: "status = 'approved'"
        columns: [id, title, status, district, updated_at]

monitoring:
  max_lag_seconds: 300
  max_retained_wal: 5GB
"""
BASE = {"topology.yaml": TOPOLOGY, "replication.yaml": REPLICATION}
Files = dict[str, str]


def _replace(files: Files, name: str, old: str, new: str) -> Files:
    assert old in files[name], old
    return {**files, name: files[name].replace(old, new)}


def node_added(f: Files) -> Files:
    return {
        **f,
        "topology.yaml": f["topology.yaml"]
        + "  district_e:\n    level: district\n    upstream: region_west\n"
        '    dsn: "host=127.0.0.1 port=1 dbname=district_e user=postgres"\n',
    }


def node_moved(f: Files) -> Files:
    return _replace(
        f,
        "topology.yaml",
        "  district_b:\n    level: district\n    upstream: region_east",
        "  district_b:\n    level: district\n    upstream: region_west",
    )


def filter_changed(f: Files) -> Files:
    f = _replace(f, "replication.yaml", 'row_filter: "approved"', 'row_filter: "approved AND NOT archived"')
    return _replace(f, "replication.yaml", "max_lag_seconds: 300", "max_lag_seconds: 120")


def table_removed(f: Files) -> Files:
    return _replace(
        f,
        "replication.yaml",
        "      public.approach:\n        row_filter: \"status = 'approved'\"\n"
        "        columns: [id, title, status, district, updated_at]\n",
        "",
    )


def level_added(f: Files) -> Files:
    f = _replace(
        f, "topology.yaml", "levels: [district, region, nation]", "levels: [district, zone, region, nation]"
    )
    for district, zone in (("a", "east"), ("b", "east"), ("c", "west"), ("d", "west")):
        region = f"region_{zone}"
        f = _replace(
            f,
            "topology.yaml",
            f"  district_{district}:\n    level: district\n    upstream: {region}",
            f"  district_{district}:\n    level: district\n    upstream: zone_{zone}",
        )
    zones = "".join(
        f"  zone_{z}:\n    level: zone\n    upstream: region_{z}\n"
        f'    dsn: "host=127.0.0.1 port=4 dbname=zone_{z} user=postgres"\n'
        for z in ("east", "west")
    )
    return {**f, "topology.yaml": f["topology.yaml"] + zones}


def node_removed(f: Files) -> Files:
    """region_west leaves; its districts move to region_east."""
    f = _replace(
        f,
        "topology.yaml",
        "  region_west:\n    level: region\n    upstream: nation\n"
        '    dsn: "host=127.0.0.1 port=2 dbname=region_west user=postgres"\n',
        "",
    )
    return {
        **f,
        "topology.yaml": f["topology.yaml"].replace("upstream: region_west", "upstream: region_east"),
    }


def invalid_head(f: Files) -> Files:
    return _replace(f, "topology.yaml", "upstream: region_west", "upstream: regoin_west")


SCENARIOS: dict[str, Callable[[Files], Files]] = {
    "node_added": node_added,
    "node_moved": node_moved,
    "filter_changed": filter_changed,
    "table_removed": table_removed,
    "level_added": level_added,
    "node_removed": node_removed,
    "invalid_head": invalid_head,
}


def _commit(repo: git.Repo, root: Path, files: Files, message: str, parent: git.Commit | None) -> git.Commit:
    directory = root / "desired-state"
    for old in directory.glob("*.yaml"):
        old.unlink()
    for name, text in files.items():
        (directory / name).write_text(text)
    repo.index.add([f"desired-state/{name}" for name in sorted(files)])
    return repo.index.commit(
        message,
        parent_commits=[parent] if parent is not None else None,
        head=False,
        author=AUTHOR,
        committer=AUTHOR,
        author_date=WHEN,
        commit_date=WHEN,
    )


def make_repo(root: Path) -> Path:
    """A repository with `base` and one tag per scenario (each a child of base); returns desired-state/."""
    repo = git.Repo.init(root)
    (root / "desired-state").mkdir()
    base = _commit(repo, root, BASE, "base", None)
    repo.create_tag("base", ref=base)
    for name, change in SCENARIOS.items():
        repo.create_tag(name, ref=_commit(repo, root, change(BASE), name, base))
    # The working tree and HEAD sit at base afterwards.
    repo.head.reference = repo.create_head("main", base)
    repo.head.reset(index=True, working_tree=True)
    return root / "desired-state"


@pytest.fixture(scope="module")
def desired(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("review") / "repo")


runner = CliRunner()


def review(directory: Path, *args: str) -> Result:
    result = runner.invoke(app, ["review", "-d", str(directory), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


# -- golden Markdown ------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_golden_markdown(desired: Path, scenario: str) -> None:
    result = review(desired, "--base", "base", "--head", scenario, "--offline")
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"{scenario}.md"
    if UPDATE:
        golden.write_text(result.stdout)
    assert golden.exists(), f"missing {golden}: run with REVIEW_UPDATE_GOLDEN=1, then READ it"
    assert result.stdout == golden.read_text()
    assert len(result.stdout) < MAX_CHARS


def test_review_is_deterministic_across_repositories(tmp_path: Path) -> None:
    """Two repositories built apart, at different paths, give the same bytes (no paths, no clock)."""
    one, two = make_repo(tmp_path / "one"), make_repo(tmp_path / "two")
    for fmt in ("markdown", "json"):
        first = review(one, "--base", "base", "--head", "level_added", "--offline", "--format", fmt).stdout
        again = review(one, "--base", "base", "--head", "level_added", "--offline", "--format", fmt).stdout
        other = review(two, "--base", "base", "--head", "level_added", "--offline", "--format", fmt).stdout
        assert first == again == other
        assert str(tmp_path) not in first


# -- what the review says ----------------------------------------------------------------------------


def test_moved_node_says_which_region_it_stops_and_starts_flowing_to(desired: Path) -> None:
    out = review(desired, "--base", "base", "--head", "node_moved", "--offline").stdout
    assert (
        "District node `district_b` moves from `region_east` to `region_west`: its rows stop flowing to "
        "`region_east` and start flowing to `region_west`." in out
    )
    assert "| `region_east` |  | `district_b` |" in out
    assert "| `region_west` | `district_b` |  |" in out
    assert "n_district_b -.->|removed| n_region_east" in out
    assert "n_district_b ==>|new| n_region_west" in out
    assert "class n_district_b moved" in out


def test_filter_change_needs_verify_repair(desired: Path) -> None:
    out = review(desired, "--base", "base", "--head", "filter_changed", "--offline").stdout
    assert (
        "Filter of `public.technology` in set `approved`: `approved` -> `approved AND NOT archived`." in out
    )
    assert "`reconcile verify --repair --table public.technology`" in out
    assert "| monitoring | `max_lag_seconds` | 300 | 120 |" in out


def test_removed_region_warns_of_orphaned_slots_on_its_districts(desired: Path) -> None:
    out = review(desired, "--base", "base", "--head", "node_removed", "--offline").stdout
    assert ":warning: orphaned slots | node region_west |" in out
    assert "`region_west_from_district_c`, `region_west_from_district_d`" in out
    assert "hold replication slots on `district_c`, `district_d`" in out
    assert "class n_region_west removed" in out


def test_level_added_recreates_links_whose_forward_origins_change(desired: Path) -> None:
    doc = json.loads(
        review(desired, "--base", "base", "--head", "level_added", "--offline", "--format", "json").stdout
    )
    change = doc["change"]
    assert change["levels_added"] == ["zone"]
    assert [n["name"] for n in change["nodes_added"]] == ["zone_east", "zone_west"]
    assert sorted(m["name"] for m in change["nodes_moved"]) == [
        "district_a",
        "district_b",
        "district_c",
        "district_d",
    ]
    # Regions already had children: their links to the nation keep forward_origins {all}.
    assert change["links_changed"] == []
    assert doc["blocking"] is False and doc["live"] == "offline" and doc["plan"] is None


def test_invalid_head_is_blocking_with_file_line_column_and_exit_0(desired: Path) -> None:
    result = review(desired, "--base", "base", "--head", "invalid_head", "--offline")
    assert result.exit_code == 0
    out = result.stdout
    assert out.splitlines()[4].startswith(
        ":no_entry: **Blocking: the head revision does not validate (2 problem(s)).**"
    )
    # Line and column of each `upstream:` value in the head's topology.yaml.
    assert (
        "- `desired-state/topology.yaml:29:15`: node 'district_c': upstream 'regoin_west' does not exist"
        in out
    )
    assert (
        "- `desired-state/topology.yaml:33:15`: node 'district_d': upstream 'regoin_west' does not exist"
        in out
    )
    assert "Not computed: the head revision must validate" in out
    assert "BLOCKED" in result.stderr
    doc = json.loads(review(desired, "--base", "base", "--head", "invalid_head", "--format", "json").stdout)
    assert doc["blocking"] is True and doc["head"]["valid"] is False and doc["live"] == "not planned"
    assert [(p["file"], p["line"], p["column"]) for p in doc["head"]["problems"]] == [
        ("desired-state/topology.yaml", 29, 15),
        ("desired-state/topology.yaml", 33, 15),
    ]


def test_unreachable_network_still_gives_change_validation_and_a_note(desired: Path) -> None:
    result = review(desired, "--base", "base", "--head", "node_moved", "--timeout", "1")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "**Live network unreachable**: no node answered within 1 s" in out
    assert ":white_check_mark: Valid: 7 node(s), 6 replication link(s)." in out
    assert "moves from `region_east` to `region_west`" in out
    assert "Not computed: no node answered." in out
    assert '| `district_a` | connection to server at "127.0.0.1", port 1 failed' in out
    offline = review(desired, "--base", "base", "--head", "node_moved", "--offline").stdout
    # Apart from the live parts, the review is the one made offline.
    live_part = out.split("### Topology of head")[1].split("### Plan")[0]
    assert live_part.rstrip("\n") == offline.split("### Topology of head")[1].rstrip("\n")


def test_dirty_working_tree_does_not_change_the_review(desired: Path) -> None:
    root = desired.parent
    repo = git.Repo(root)
    clean = review(desired, "--base", "base", "--head", "node_moved", "--offline").stdout
    topology = desired / "topology.yaml"
    original = topology.read_text()
    try:
        topology.write_text("version: 7\nthis is: [not valid\n")
        (desired / "untracked.yaml").write_text("nodes: {}\n")
        (desired / "replication.yaml").write_text("replication_sets: {}\n")
        repo.index.add(["desired-state/replication.yaml"])
        status = repo.git.status("--porcelain")
        dirty = review(desired, "--base", "base", "--head", "node_moved", "--offline").stdout
        assert dirty == clean
        # HEAD (the default --head) is base: the dirty files are not what is reviewed.
        head = review(desired, "--base", "base", "--offline").stdout
        assert "The desired state is the same at both revisions." in head
        assert repo.git.status("--porcelain") == status
        assert topology.read_text() == "version: 7\nthis is: [not valid\n"
    finally:
        repo.head.reset(index=True, working_tree=True)
        (desired / "untracked.yaml").unlink()
        topology.write_text(original)


def test_unknown_revision_is_a_tool_failure(desired: Path, tmp_path: Path) -> None:
    result = review(desired, "--base", "no-such-ref", "--offline")
    assert result.exit_code == 1
    assert "unknown git revision 'no-such-ref'" in result.stderr
    (tmp_path / "plain").mkdir()
    result = review(tmp_path / "plain", "--base", "HEAD", "--offline")
    assert result.exit_code == 1 and "not in a git repository" in result.stderr


def test_out_file_holds_the_same_markdown(desired: Path, tmp_path: Path) -> None:
    out = tmp_path / "review.md"
    result = review(desired, "--base", "base", "--head", "node_added", "--offline", "-o", str(out))
    assert out.read_text() == result.stdout


def test_new_desired_state_directory_counts_everything_as_added(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    repo = git.Repo.init(root)
    (root / "README.md").write_text("x\n")
    repo.index.add(["README.md"])
    first = repo.index.commit("readme", author=AUTHOR, committer=AUTHOR, author_date=WHEN, commit_date=WHEN)
    repo.create_tag("start", ref=first)
    (root / "desired-state").mkdir()
    tip = _commit(repo, root, BASE, "desired state", first)
    repo.head.reference = repo.create_head("main", tip)
    doc = json.loads(
        review(root / "desired-state", "--base", "start", "--offline", "--format", "json").stdout
    )
    assert doc["base"]["exists"] is False and doc["head"]["valid"] is True
    assert len(doc["change"]["nodes_added"]) == 7
    assert doc["summary"][0].startswith("The desired state is new: 7 node(s) on 3 levels")


# -- pure: change model, size limit ------------------------------------------------------------------


NAMES = st.sampled_from(["a", "b", "c", "d", "e", "f"])


@st.composite
def states(draw: st.DrawFn) -> DesiredState:
    """A small valid-shaped tree on three levels, sets with a few tables."""
    tops = ["top"]
    mids = sorted(draw(st.sets(NAMES, min_size=1, max_size=3)))
    leaves = sorted(draw(st.sets(NAMES, max_size=5)))
    nodes = {"top": NodeDecl(level="nation", dsn="host=h port=3 dbname=top")}
    for m in mids:
        nodes[f"r_{m}"] = NodeDecl(level="region", upstream=tops[0], dsn=f"host=h port=2 dbname=r_{m}")
    for leaf in leaves:
        up = f"r_{draw(st.sampled_from(mids))}"
        nodes[f"d_{leaf}"] = NodeDecl(level="district", upstream=up, dsn=f"host=h port=1 dbname=d_{leaf}")
    tables = {
        f"public.t_{t}": TableDecl(
            row_filter=draw(st.sampled_from([None, "approved", "status = 'ok'"])),
            columns=draw(st.sampled_from([None, ("id", "x"), ("id",)])),
        )
        for t in draw(st.sets(NAMES, max_size=3))
    }
    sets = {"approved": SetDecl(tables=tables)} if draw(st.booleans()) else {}
    return DesiredState(version=1, nodes=nodes, replication_sets=sets)


@settings(max_examples=60, deadline=None)
@given(states(), states())
def test_change_matches_the_models(a: DesiredState, b: DesiredState) -> None:
    assert semantic_change(a, a).empty
    assert touched(a, a) == set()
    change = semantic_change(a, b)
    assert {n.name for n in change.nodes_added} == set(b.nodes) - set(a.nodes)
    assert {n.name for n in change.nodes_removed} == set(a.nodes) - set(b.nodes)
    assert {m.name for m in change.nodes_moved} == {
        n for n in set(a.nodes) & set(b.nodes) if a.nodes[n].upstream != b.nodes[n].upstream
    }
    old_tables = {(s, t) for s, d in a.replication_sets.items() for t in d.tables}
    new_tables = {(s, t) for s, d in b.replication_sets.items() for t in d.tables}
    assert {(t.set_name, t.table) for t in change.tables_added} == new_tables - old_tables
    assert {(t.set_name, t.table) for t in change.tables_removed} == old_tables - new_tables
    assert change.empty == (a == b)


def _big_network(districts: int) -> DesiredState:
    nodes = {"nation": NodeDecl(level="nation", dsn="host=h3 dbname=nation")}
    for r in range(20):
        nodes[f"region_{r:02d}"] = NodeDecl(level="region", upstream="nation", dsn=f"host=h2 dbname=r{r}")
    for d in range(districts):
        nodes[f"district_{d:04d}"] = NodeDecl(
            level="district", upstream=f"region_{d % 20:02d}", dsn=f"host=h1 dbname=d{d}"
        )
    tables = {f"public.table_{t:03d}": TableDecl(row_filter="approved") for t in range(300)}
    return DesiredState(version=1, nodes=nodes, replication_sets={"approved": SetDecl(tables=tables)})


def test_large_change_is_summarised_under_the_limit() -> None:
    base = DesiredState(
        version=1, nodes={"nation": NodeDecl(level="nation", dsn="host=h3")}, replication_sets={}
    )
    head = _big_network(3000)
    change = semantic_change(base, head)
    mermaid, left_out = render_mermaid(change, base, head)
    actions = tuple(
        CreateSubscription(
            node=f"region_{d % 20:02d}",
            subscription=Subscription(
                name=f"region_{d % 20:02d}_from_district_{d:04d}",
                provider_node=f"district_{d:04d}",
                provider_dsn=f"host=h1 dbname=d{d}",
                replication_sets=("approved",),
                forward_origins=(),
            ),
        )
        for d in range(3000)
    )
    side = Side(ref="x", commit="0" * 40, exists=True, nodes=len(head.nodes), links=3020)
    review_model = Review(
        directory="desired-state",
        base=side,
        head=side,
        change=change,
        summary=tuple(summarise(change, base, head)),
        risks=sort_risks(change_risks(change, base, head)),
        live=Live.PLANNED,
        timeout=10,
        plan=Plan(tool_version="t", actions=actions),
        mermaid=mermaid,
        mermaid_left_out=left_out,
    )
    text = render_review_markdown(review_model)
    assert len(text) <= MAX_CHARS
    assert text == render_review_markdown(review_model)
    assert "**Plan: 3000 to add, 0 to change, 0 to destroy.**" in text
    assert re.search(r"\*\.\.\. and \d+ more (nodes|risks|tables)\*", text)
    # A tiny budget still holds: the text is cut with a note, never over.
    assert len(render_review_markdown(review_model, max_chars=2_000)) <= 2_000


def _sub(subscriber: str, provider: str, sets: tuple[str, ...] = ("approved",)) -> Subscription:
    return Subscription(
        name=f"{subscriber}_from_{provider}",
        provider_node=provider,
        provider_dsn=f"host=h dbname={provider}",
        replication_sets=sets,
        forward_origins=("all",) if subscriber == "nation" else (),
    )


def test_copy_risks_follow_the_plans_initial_copy_flags() -> None:
    """Review's copy count is the plan's `[initial copy]` labels, not a list of action types.

    A re-created subscription (lost slot) and one created without a copy copy
    nothing; a native REFRESH PUBLICATION copies the table its provider gains.
    """
    nodes = {
        "nation": NodeDecl(level="nation", dsn="host=h dbname=nation"),
        "r1": NodeDecl(level="region", upstream="nation", dsn="host=h dbname=r1"),
        "d1": NodeDecl(level="district", upstream="r1", dsn="host=h dbname=d1"),
        "d2": NodeDecl(level="district", upstream="r1", dsn="host=h dbname=d2"),
    }
    tables = {"public.technology": TableDecl(row_filter="approved"), "public.approach": TableDecl()}
    head = DesiredState(version=1, nodes=nodes, replication_sets={"approved": SetDecl(tables=tables)})
    actions = (
        ReplaceSubscription(
            node="nation", before=_sub("nation", "r1"), after=_sub("nation", "r1"), reason="slot lost"
        ),
        CreateSubscription(node="r1", subscription=_sub("r1", "d2"), copy_data=False),
        AddTable(node="d1", set_name="approved", table="public.approach", spec=SetTable()),
        RefreshSubscription(node="r1", name="r1_from_d1", provider_node="d1"),
        # Re-added where r1 already marks it synced: pglogical copies nothing.
        AddTable(
            node="d2", set_name="approved", table="public.technology", spec=SetTable(), synced_at=("r1",)
        ),
    )
    plan = Plan(tool_version="t", actions=actions)
    copying = [a for a in plan.actions if a.data_movement is DataMovement.INITIAL_COPY]
    assert copying == [actions[2], actions[3]]
    assert copies(plan, head) == [("d1", "r1", "public.approach")]
    risks = plan_risks(plan, head, {})
    moving = [r.message for r in risks if r.kind is RiskKind.DATA_MOVEMENT]
    assert moving == [
        "the plan starts 1 initial table copy (1 of unknown size: provider not reachable or table missing)"
    ]
    # What the plan labels [needs verify], the risks say needs verify.
    verify = [r.message for r in risks if r.kind is RiskKind.NEEDS_VERIFY]
    lines = render_text(plan).splitlines()
    labelled = [line for line in lines if "[needs verify]" in line and not line.startswith("Note:")]
    assert len(labelled) == 3
    assert verify == [
        "3 action(s) of the plan on `d2`, `nation`, `r1` are marked [needs verify]: they change which rows"
        " a subscriber should hold without copying them; after apply run `reconcile verify --repair`"
    ]
    # No copying action, no copy risk: the plan and the risks say the same.
    quiet = Plan(tool_version="t", actions=actions[:2])
    assert copies(quiet, head) == []
    assert not [r for r in plan_risks(quiet, head, {}) if r.kind is RiskKind.DATA_MOVEMENT]
    assert "[initial copy]" not in render_text(quiet)


# -- against a live network ----------------------------------------------------------------------------


def _git_commit_all(repo: git.Repo, message: str) -> git.Commit:
    repo.index.add([p.name for p in sorted(Path(repo.working_tree_dir or "").glob("*.yaml"))])
    return repo.index.commit(message, author=AUTHOR, committer=AUTHOR)


@pytest.mark.server
def test_review_against_a_live_network_includes_the_plan_and_copy_sizes(network: Any) -> None:
    net = network(parents={"nation": None, "r1": "nation", "r2": "nation", "d1": "r1", "d2": "r1"})
    repo = git.Repo.init(net.dir)
    _git_commit_all(repo, "base")
    applied = runner.invoke(app, ["apply", "-d", str(net.dir), "--auto-approve"])
    assert applied.exit_code == 0, applied.output
    net.execute(
        "d2",
        "INSERT INTO public.technology (id, title, district, approved)"
        " SELECT gen_random_uuid(), 'tech ' || i, 'd2', i % 2 = 0 FROM generate_series(1, 50) AS i",
    )
    net.execute("d2", "ANALYZE public.technology")

    topology = net.dir / "topology.yaml"
    text = topology.read_text()
    moved = re.sub(r"(d2:\n(?:    .*\n)*?    upstream: )r1", r"\1r2", text)
    assert moved != text
    topology.write_text(moved)
    _git_commit_all(repo, "move d2 to r2")

    result = review(net.dir, "--base", "HEAD~1", "--timeout", "5")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Live network: every node answered" in out
    assert "### Plan against the live network" in out
    assert re.search(r"\*\*Plan: \d+ to add, \d+ to change, \d+ to destroy\.\*\*", out)
    assert "subscription r2_from_d2 <- d2" in out
    assert f"desired state at `{repo.head.commit.hexsha[:12]}`" in out
    # The copy r2 makes from d2, sized on d2: 50 analysed rows.
    assert re.search(r"\| `d2` \| `r2` \| `public\.technology` \| 50 \| \d+\.\d kB \|", out), out
    doc = json.loads(review(net.dir, "--base", "HEAD~1", "--format", "json").stdout)
    assert doc["live"] == "planned"
    assert any(a["kind"] == "create_subscription" for a in doc["plan"]["actions"])


def test_no_password_in_the_review(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    repo = git.Repo.init(root)
    (root / "desired-state").mkdir()
    base = _commit(repo, root, BASE, "base", None)
    leaked = _replace(
        BASE,
        "topology.yaml",
        "port=1 dbname=district_a user=postgres",
        "port=1 dbname=district_a password=hunter2",
    )
    uri = _replace(
        BASE,
        "topology.yaml",
        '"host=127.0.0.1 port=1 dbname=district_b user=postgres"',
        '"postgresql://u:s3cr3t@h/db"',
    )
    repo.create_tag("base", ref=base)
    repo.create_tag("leaked", ref=_commit(repo, root, leaked, "password", base))
    repo.create_tag("uri", ref=_commit(repo, root, uri, "uri password", base))
    for head in ("leaked", "uri"):
        for fmt in ("markdown", "json"):
            result = review(
                root / "desired-state", "--base", "base", "--head", head, "--offline", "--format", fmt
            )
            assert result.exit_code == 0
            assert "password" in result.output.lower() or head == "uri", result.output
            assert "hunter2" not in result.output and "s3cr3t" not in result.output
