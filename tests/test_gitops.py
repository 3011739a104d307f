"""gitops: the desired state of any revision is read from git objects, never from the working tree."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from reconciler import gitops
from reconciler.errors import LoadError

AUTHOR = git.Actor("Test Author", "test@example.org")
WHEN = "1704067200 +0000"  # fixed: same content, same commit ids

TOPOLOGY = """\
version: 1
levels: [district, region]
nodes:
  region:
    level: region
    dsn: "host=127.0.0.1 port=1 dbname=region user=postgres"
  d1:
    level: district
    upstream: region
    dsn: "host=127.0.0.1 port=2 dbname=d1 user=postgres"
"""
SETS = """\
replication_sets:
  approved:
    tables:
      public.technology:
        row_filter: "approved"
"""


def _commit(repo: git.Repo, message: str) -> git.Commit:
    return repo.index.commit(message, author=AUTHOR, committer=AUTHOR, author_date=WHEN, commit_date=WHEN)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    """A repository with the desired state in `desired-state/`: commit 1 valid, commit 2 broken."""
    r = git.Repo.init(tmp_path / "repo")
    root = Path(r.working_tree_dir or "")
    _write(
        root,
        {
            "desired-state/topology.yaml": TOPOLOGY,
            "desired-state/replication.yaml": SETS,
            "desired-state/notes.txt": "not yaml",
            "desired-state/nested/extra.yaml": "this: is ignored\n",
            "README.md": "x\n",
        },
    )
    r.index.add(
        [
            "desired-state/topology.yaml",
            "desired-state/replication.yaml",
            "desired-state/notes.txt",
            "desired-state/nested/extra.yaml",
            "README.md",
        ]
    )
    _commit(r, "valid")
    r.create_tag("valid")
    _write(root, {"desired-state/topology.yaml": TOPOLOGY.replace("upstream: region", "upstream: regoin")})
    r.index.add(["desired-state/topology.yaml"])
    _commit(r, "broken upstream")
    r.create_tag("broken")
    return r


def test_load_revision_reads_the_committed_blobs(repo: git.Repo) -> None:
    directory = Path(repo.working_tree_dir or "") / "desired-state"
    state = gitops.load_revision(directory, "valid")
    assert sorted(state.nodes) == ["d1", "region"]
    assert state.nodes["d1"].upstream == "region"
    found = gitops.revision_files(directory, "valid")
    # Repository-relative names; only *.yaml directly in the directory, like the directory loader.
    assert sorted(found.files) == ["desired-state/replication.yaml", "desired-state/topology.yaml"]
    assert found.prefix == "desired-state"
    assert found.commit == repo.commit("valid").hexsha


def test_invalid_revision_names_repository_relative_file_line_column(repo: git.Repo) -> None:
    directory = Path(repo.working_tree_dir or "") / "desired-state"
    with pytest.raises(LoadError) as caught:
        gitops.load_revision(directory, "broken")
    locations = [str(p.location) for p in caught.value.problems]
    assert locations == ["desired-state/topology.yaml:9:15"], caught.value.problems
    assert "regoin" in caught.value.problems[0].message


def test_dirty_working_tree_does_not_leak_and_is_not_touched(repo: git.Repo) -> None:
    root = Path(repo.working_tree_dir or "")
    directory = root / "desired-state"
    # Staged edit, unstaged edit and an untracked file: none of them is at `broken` or `valid`.
    _write(root, {"desired-state/replication.yaml": "replication_sets: {}\n"})
    repo.index.add(["desired-state/replication.yaml"])
    _write(
        root,
        {
            "desired-state/topology.yaml": "version: 2\n",
            "desired-state/extra.yaml": "monitoring: {max_lag_seconds: 1}\n",
        },
    )
    before_files = {
        p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts
    }
    before_status = repo.git.status("--porcelain")
    before_index = repo.git.ls_files("--stage")

    state = gitops.load_revision(directory, "valid")
    assert state == gitops.load_revision(directory, repo.commit("valid").hexsha)
    assert "approved" in state.replication_sets
    assert state.monitoring.max_lag_seconds == 300  # the untracked extra.yaml is not read
    with pytest.raises(LoadError):
        gitops.load_revision(directory, "HEAD")  # HEAD is `broken`, whatever the working tree says

    after_files = {
        p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts
    }
    assert after_files == before_files
    assert repo.git.status("--porcelain") == before_status
    assert repo.git.ls_files("--stage") == before_index


def test_unknown_revision_and_not_a_repository(repo: git.Repo, tmp_path: Path) -> None:
    directory = Path(repo.working_tree_dir or "") / "desired-state"
    for ref in ("no-such-branch", "HEAD~5", "0123456789abcdef0123456789abcdef01234567"):
        with pytest.raises(gitops.RevisionError, match="unknown git revision"):
            gitops.revision_files(directory, ref)
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(gitops.RevisionError, match="not in a git repository"):
        gitops.revision_files(outside, "HEAD")


def test_directory_absent_at_a_revision(repo: git.Repo) -> None:
    root = Path(repo.working_tree_dir or "")
    (root / "elsewhere").mkdir()
    found = gitops.revision_files(root / "elsewhere", "valid")
    assert (found.exists, found.files, found.prefix) == (False, {}, "elsewhere")
    with pytest.raises(LoadError, match="no \\*.yaml files"):
        gitops.load_revision(root / "elsewhere", "valid")


def test_directory_at_the_repository_root(tmp_path: Path) -> None:
    r = git.Repo.init(tmp_path / "flat")
    root = Path(r.working_tree_dir or "")
    _write(root, {"topology.yaml": TOPOLOGY, "replication.yaml": SETS})
    r.index.add(["topology.yaml", "replication.yaml"])
    _commit(r, "flat")
    found = gitops.revision_files(root, "HEAD")
    assert (found.prefix, sorted(found.files)) == ("", ["replication.yaml", "topology.yaml"])
    assert sorted(gitops.load_revision(root, "HEAD").nodes) == ["d1", "region"]


def test_revision_reports_dirty_files_under_the_directory(repo: git.Repo) -> None:
    root = Path(repo.working_tree_dir or "")
    assert gitops.revision(root / "desired-state").dirty_files == ()
    _write(root, {"desired-state/topology.yaml": TOPOLOGY, "README.md": "changed\n"})
    rev = gitops.revision(root / "desired-state")
    assert rev.commit == repo.head.commit.hexsha
    assert rev.dirty_files == ("desired-state/topology.yaml",)
