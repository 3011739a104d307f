"""DSNs from an unmerged revision or an edited plan file never meet the operator's secrets (real servers).

A fake listener on 127.0.0.2 records every connection that reaches it: a
review of a merge request whose DSNs point there must not send it anything,
with PGPASSWORD set (libpq would send it to any server that asks).
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest
from ruamel.yaml import YAML
from support import cli

AUTHOR = git.Actor("Review Test", "review@example.org")


class FakeListener:
    """A TCP server on 127.0.0.2 that accepts, records the first bytes and hangs up."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.2", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.seen: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    self.seen.append(conn.recv(1024))
                except OSError:
                    self.seen.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def fake() -> Iterator[FakeListener]:
    listener = FakeListener()
    yield listener
    listener.close()


@pytest.fixture
def fake2() -> Iterator[FakeListener]:
    """A second fake: nodes of two levels need servers of their own."""
    listener = FakeListener()
    yield listener
    listener.close()


@pytest.fixture
def pgpassword(monkeypatch: pytest.MonkeyPatch) -> str:
    # The sandbox servers trust loopback and never ask for it; a fake server would.
    monkeypatch.setenv("PGPASSWORD", "hunter2")
    return "hunter2"


def _commit_all(repo: git.Repo, message: str) -> git.Commit:
    repo.index.add([p.name for p in sorted(Path(repo.working_tree_dir or "").glob("*.yaml"))])
    return repo.index.commit(message, author=AUTHOR, committer=AUTHOR)


def _set_node(topology: Path, node: str, **fields: str) -> None:
    """Set fields of `node` (added when missing) in a desired-state topology.yaml."""
    yaml = YAML(typ="safe")
    data = yaml.load(topology.read_text())
    data["nodes"].setdefault(node, {}).update(fields)
    with topology.open("w") as out:
        yaml.dump(data, out)


def _review(directory: Path, *args: str) -> str:
    result = cli("review", "-d", str(directory), "--base", "HEAD~1", "--timeout", "5", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.server
def test_review_reads_the_network_with_base_dsns_only(
    network: Any, fake: FakeListener, pgpassword: str
) -> None:
    """Head points an existing node's dsn at the fake and adds a node there: neither is contacted."""
    net = network(parents={"nation": None, "r1": "nation", "d1": "r1"})
    repo = git.Repo.init(net.dir)
    _commit_all(repo, "base")
    topology = net.dir / "topology.yaml"
    _set_node(topology, "d1", dsn=f"host=127.0.0.2 port={fake.port} dbname=d1 user=postgres")
    _set_node(
        topology,
        "d2",
        level="district",
        upstream="r1",
        dsn=f"host=127.0.0.2 port={fake.port} dbname=d2 user=postgres",
    )
    _commit_all(repo, "d1 moves to the fake, d2 is new there")

    out = _review(net.dir)
    assert fake.seen == []
    assert ":no_entry:" not in out, out
    # d1 was read through base's DSN; the plan still shows head's wish (its new interface DSN).
    assert "Live network: every node answered" in out
    assert "1 node(s) new in this merge request were not contacted (`d2`)" in out
    assert "| `d2` | not contacted: new in this merge request" in out
    assert "#### node `d1`" in out
    assert pgpassword not in out

    doc = json.loads(_review(net.dir, "--format", "json"))
    assert fake.seen == []
    assert doc["live"] == "planned" and doc["unreachable"] == {}
    assert list(doc["not_contacted"]) == ["d2"]
    assert "d1" in doc["plan"]["fingerprints"] and "d2" not in doc["plan"]["fingerprints"]


@pytest.mark.server
def test_head_admin_dsn_with_another_hostaddr_is_not_used(
    network: Any, fake: FakeListener, pgpassword: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even where the operator allows hostaddr, a merge request's admin_dsn is never connected with."""
    config = tmp_path / "operator.toml"
    config.write_text('[dsn]\nallow = ["hostaddr"]\n')
    monkeypatch.setenv("RECONCILE_CONFIG", str(config))
    net = network(parents={"nation": None, "d1": "nation"})
    repo = git.Repo.init(net.dir)
    _commit_all(repo, "base")
    d1 = net.state.nodes["d1"].dsn
    port = re.search(r"port=(\d+)", d1)
    assert port is not None
    admin = d1.replace(f"port={port.group(1)}", f"hostaddr=127.0.0.2 port={fake.port}")
    _set_node(net.dir / "topology.yaml", "d1", admin_dsn=admin)
    _commit_all(repo, "d1 gets an admin_dsn at the fake")

    out = _review(net.dir)
    assert fake.seen == []
    assert "Node `d1`: admin_dsn changes." in out
    assert "Live network: every node answered" in out and "not contacted" not in out
    # Without the operator's permission the head does not even validate: nothing is contacted.
    monkeypatch.setenv("RECONCILE_CONFIG", "")
    refused = _review(net.dir)
    assert "uses 'hostaddr', which differs from host" in refused
    assert "Live network not consulted: the head revision does not validate." in refused
    assert fake.seen == []


def _fake_repo(root: Path, fake: FakeListener, fake2: FakeListener) -> git.Repo:
    """A repository whose first commit has no desired state, and whose second points at the fake."""
    repo = git.Repo.init(root)
    (root / "README.md").write_text("x\n")
    repo.index.add(["README.md"])
    repo.index.commit("readme", author=AUTHOR, committer=AUTHOR)
    (root / "desired-state").mkdir()
    (root / "desired-state" / "topology.yaml").write_text(
        "version: 1\nlevels: [district, nation]\nnodes:\n"
        f"  nation: {{level: nation, dsn: 'host=127.0.0.2 port={fake.port} dbname=n user=postgres'}}\n"
        f"  d1: {{level: district, upstream: nation, dsn: 'host=127.0.0.2 port={fake2.port} dbname=d user=postgres'}}\n"
    )
    (root / "desired-state" / "sets.yaml").write_text(
        "replication_sets:\n  approved:\n    tables:\n      public.technology: {row_filter: approved}\n"
    )
    repo.index.add(["desired-state/topology.yaml", "desired-state/sets.yaml"])
    repo.index.commit("desired state at the fake", author=AUTHOR, committer=AUTHOR)
    return repo


def test_without_a_base_nothing_is_contacted(
    tmp_path: Path, fake: FakeListener, fake2: FakeListener, pgpassword: str
) -> None:
    _fake_repo(tmp_path / "repo", fake, fake2)
    out = _review(tmp_path / "repo" / "desired-state")
    assert fake.seen == [] and fake2.seen == []
    assert "Live network not contacted: the base revision has no desired state" in out
    assert "### Plan against the live network" not in out


def test_with_an_invalid_base_nothing_is_contacted(
    tmp_path: Path, fake: FakeListener, fake2: FakeListener, pgpassword: str
) -> None:
    repo = _fake_repo(tmp_path / "repo", fake, fake2)
    directory = tmp_path / "repo" / "desired-state"
    topology = directory / "topology.yaml"
    good = topology.read_text()
    topology.write_text(good.replace("level: nation,", "level: nowhere,"))
    repo.index.add(["desired-state/topology.yaml"])
    repo.index.commit("broken", author=AUTHOR, committer=AUTHOR)
    topology.write_text(good)
    repo.index.add(["desired-state/topology.yaml"])
    repo.index.commit("fixed", author=AUTHOR, committer=AUTHOR)
    doc = json.loads(_review(directory, "--format", "json"))
    assert fake.seen == [] and fake2.seen == []
    assert doc["base"]["valid"] is False and doc["head"]["valid"] is True
    assert doc["live"] == "not contacted" and doc["plan"] is None


# -- saved plans ---------------------------------------------------------------------------------


@pytest.mark.server
def test_an_edited_saved_plan_cannot_redirect_a_subscription(network: Any, tmp_path: Path) -> None:
    """apply connects with the loaded desired state's DSNs; the DSNs a plan installs must be those too."""
    net = network(parents={"nation": None, "d1": "nation"})
    git_repo = git.Repo.init(net.dir)
    _commit_all(git_repo, "base")
    saved = tmp_path / "plan.json"
    assert cli("plan", "-d", str(net.dir), "-o", str(saved)).exit_code == 0
    doc = json.loads(saved.read_text())
    edited = 0
    for action in doc["actions"]:
        if action["kind"] == "create_subscription":
            action["subscription"]["provider_dsn"] = "host=127.0.0.2 port=1 dbname=nation user=postgres"
            edited += 1
    assert edited == 1
    saved.write_text(json.dumps(doc))
    result = cli("apply", "-d", str(net.dir), str(saved))
    assert result.exit_code == 1, result.output
    assert "the saved plan installs connection strings the desired state does not declare" in result.output
    assert "nation: subscription nation_from_d1 <- d1" in result.output and "127.0.0.2" not in result.output
    # Nothing was done: the nation still has no pglogical node.
    assert net.execute("nation", "SELECT count(*) FROM pglogical.node")[0][0] == 0
    # The same file, unedited, applies.
    assert cli("plan", "-d", str(net.dir), "-o", str(saved)).exit_code == 0
    applied = cli("apply", "-d", str(net.dir), str(saved))
    assert applied.exit_code == 0, applied.output


# What libpq reads, not what is left once a password is cut out: each edit below reaches
# evil.example, and cutting "password..." (or a URI's userinfo) out of it gives back the
# declared text exactly.
_DISGUISED = [
    # URI: the userinfo ends at the first '@' for libpq, at the last for a cut.
    ("postgresql://10.0.0.1/nation", "postgresql://:@evil.example,@10.0.0.1/nation"),
    ("postgresql://repl@10.0.0.1/nation", "postgresql://repl:@evil.example,@10.0.0.1/nation"),
    # keyword: a "password=" inside a quoted value, whose quote ends in another value.
    (
        "host=10.0.0.1 dbname=nation application_name='a b'",
        "host=10.0.0.1 dbname=nation application_name='a password=' host=evil.example "
        "fallback_application_name=' b'",
    ),
]


@pytest.mark.parametrize(("declared", "edited"), _DISGUISED)
def test_a_plan_dsn_is_compared_as_libpq_reads_it(
    declared: str, edited: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.actions import CreateNode
    from reconciler.load import load_desired_texts
    from reconciler.plan import Plan, foreign_dsns

    monkeypatch.setenv("RECONCILE_CONFIG", "")
    text = (
        "version: 1\nlevels: [district, nation]\nnodes:\n"
        f'  nation: {{level: nation, dsn: "{declared}"}}\n'
        "  d1: {level: district, upstream: nation, dsn: 'host=10.0.0.2 dbname=d1'}\n"
        "replication_sets:\n  s:\n    tables:\n      public.t: {}\n"
    )
    state = load_desired_texts({"topology.yaml": text}, origin=".")

    def plan(dsn: str) -> Plan:
        return Plan(tool_version="test", actions=(CreateNode(node="nation", name="nation", dsn=dsn),))

    assert foreign_dsns(plan(edited), state) == ["nation: pglogical node nation"]
    assert foreign_dsns(plan(declared), state) == []


@pytest.mark.server
def test_an_edited_saved_plan_cannot_hide_a_host_in_a_uri_userinfo(
    network: Any, fake: FakeListener, pgpassword: str, tmp_path: Path
) -> None:
    """The provider DSN 'user:@fake,@host' reads as the declared 'user@host' once its userinfo is cut."""
    net = network(parents={"nation": None, "d1": "nation"})
    found = re.search(r"port=(\d+) dbname=(\w+)", net.dsn("d1"))
    assert found is not None
    port, dbname = found.groups()
    declared = f"postgresql://postgres@127.0.0.1:{port}/{dbname}"
    _set_node(net.dir / "topology.yaml", "d1", dsn=declared)
    _commit_all(git.Repo.init(net.dir), "d1's dsn as a URI")
    saved = tmp_path / "plan.json"
    planned = cli("plan", "-d", str(net.dir), "-o", str(saved))
    assert planned.exit_code == 0, planned.output
    doc = json.loads(saved.read_text())
    disguised = f"postgresql://postgres:@127.0.0.2:{fake.port},@127.0.0.1:{port}/{dbname}"
    edited = 0
    for action in doc["actions"]:
        if action["kind"] == "create_subscription":
            assert action["subscription"]["provider_dsn"] == declared
            action["subscription"]["provider_dsn"] = disguised
            edited += 1
    assert edited == 1
    saved.write_text(json.dumps(doc))
    result = cli("apply", "-d", str(net.dir), str(saved))
    assert result.exit_code == 1, result.output
    assert "the saved plan installs connection strings the desired state does not declare" in result.output
    assert fake.seen == []
    assert net.execute("nation", "SELECT count(*) FROM pglogical.node")[0][0] == 0


@pytest.mark.parametrize("base", ["main", "origin/main"])
def test_a_tag_named_like_the_base_is_not_taken_for_it(
    tmp_path: Path, fake: FakeListener, fake2: FakeListener, pgpassword: str, base: str
) -> None:
    """git takes a tag before a branch: a tag `main` pushed with the merge request would be the base."""
    root = tmp_path / "repo"
    repo = _fake_repo(root, fake, fake2)  # its head points at the fakes
    merged = repo.head.commit.parents[0]  # no desired state: nothing would be contacted
    repo.create_head("main", merged)
    repo.git.update_ref("refs/remotes/origin/main", merged.hexsha)
    repo.create_tag(base, repo.head.commit)
    result = cli("review", "-d", str(root / "desired-state"), "--base", base, "--timeout", "2")
    assert result.exit_code == 1, result.output
    assert f"--base '{base}' is ambiguous:" in result.output
    assert fake.seen == [] and fake2.seen == []
    # Named in full, the branch is the base: nothing to connect with, and nothing is.
    full = "refs/heads/main" if base == "main" else "refs/remotes/origin/main"
    assert "Live network not contacted: the base revision has no desired state" in _review_at(root, full)
    assert fake.seen == [] and fake2.seen == []


def _review_at(root: Path, base: str) -> str:
    result = cli("review", "-d", str(root / "desired-state"), "--base", base, "--timeout", "2")
    assert result.exit_code == 0, result.output
    return result.stdout
