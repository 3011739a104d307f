"""Git revisions of the desired state: which commit a plan came from, dirty files, any revision's state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from reconciler.errors import ReconcileError
from reconciler.load import load_desired_texts
from reconciler.model import DesiredState


@dataclass(frozen=True)
class Revision:
    """The commit the desired-state directory was read at, and its uncommitted files."""

    commit: str | None
    dirty_files: tuple[str, ...]

    @property
    def label(self) -> str:
        if self.commit is None:
            return "not a git repository"
        return self.commit[:12] + (" (dirty)" if self.dirty_files else "")


def _repo(directory: Path) -> git.Repo | None:
    try:
        return git.Repo(directory, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None


def revision(directory: Path) -> Revision:
    """HEAD of the repository holding `directory`, and its dirty files under it."""
    repo = _repo(directory)
    if repo is None or not repo.head.is_valid():
        return Revision(commit=None, dirty_files=())
    root = Path(repo.working_tree_dir or ".").resolve()
    try:
        prefix = directory.resolve().relative_to(root).as_posix()
    except ValueError:
        prefix = ""
    prefix = "" if prefix == "." else prefix
    dirty: set[str] = set()
    for item in repo.index.diff(None):  # unstaged changes
        dirty.add(item.a_path or item.b_path or "")
    for item in repo.index.diff("HEAD"):  # staged changes
        dirty.add(item.a_path or item.b_path or "")
    dirty.update(repo.untracked_files)
    under = sorted(p for p in dirty if p and (not prefix or p == prefix or p.startswith(prefix + "/")))
    return Revision(commit=repo.head.commit.hexsha, dirty_files=tuple(under))


# -- desired state at any revision (for `review`) ------------------------------------


class RevisionError(ReconcileError):
    """A revision cannot be read: not a git repository, unknown ref, unreadable blob."""


@dataclass(frozen=True)
class RevisionFiles:
    """The desired-state files of one commit: {path relative to the repository: text}."""

    commit: str
    prefix: str  # the desired-state directory relative to the repository root ("" at the root)
    files: dict[str, str]
    exists: bool  # False when the directory is absent from that commit's tree


def _prefix(repo: git.Repo, directory: Path) -> str:
    root = Path(repo.working_tree_dir or ".").resolve()
    try:
        prefix = directory.resolve().relative_to(root).as_posix()
    except ValueError as exc:
        raise RevisionError(f"{directory} is not inside the repository at {root}") from exc
    return "" if prefix == "." else prefix


def resolve(directory: Path, ref: str) -> str:
    """The full commit id `ref` names in the repository holding `directory`."""
    repo = _repo(directory)
    if repo is None:
        raise RevisionError(f"{directory} is not in a git repository")
    return _commit(repo, ref).hexsha


def _commit(repo: git.Repo, ref: str) -> git.Commit:
    try:
        return repo.commit(ref)
    except (git.BadName, git.BadObject, ValueError) as exc:
        raise RevisionError(f"unknown git revision {ref!r}") from exc


def revision_files(directory: Path, ref: str) -> RevisionFiles:
    """The `*.yaml` blobs directly in `directory` as the tree at `ref` has them.

    Reads git objects only: the working tree and the index are never touched,
    so uncommitted edits do not leak into a review of committed revisions.
    Only files directly in the directory count, like `load_desired_state`'s
    glob, so both loaders see the same set of files.
    """
    repo = _repo(directory)
    if repo is None:
        raise RevisionError(f"{directory} is not in a git repository")
    prefix = _prefix(repo, directory)
    commit = _commit(repo, ref)
    tree: git.Tree = commit.tree
    if prefix:
        try:
            sub = tree / prefix
        except KeyError:
            return RevisionFiles(commit=commit.hexsha, prefix=prefix, files={}, exists=False)
        if not isinstance(sub, git.Tree):
            return RevisionFiles(commit=commit.hexsha, prefix=prefix, files={}, exists=False)
        tree = sub
    files: dict[str, str] = {}
    for blob in tree.blobs:
        if not blob.name.endswith(".yaml"):
            continue
        try:
            files[str(blob.path)] = blob.data_stream.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RevisionError(f"{blob.path} at {commit.hexsha[:12]} is not UTF-8 text") from exc
    return RevisionFiles(commit=commit.hexsha, prefix=prefix, files=dict(sorted(files.items())), exists=True)


def load_revision(directory: Path, ref: str) -> DesiredState:
    """The desired state of `directory` at `ref`; LoadError names repository-relative file:line:column."""
    found = revision_files(directory, ref)
    return load_desired_texts(found.files, origin=found.prefix or ".")
