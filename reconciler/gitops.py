"""Git revisions of the desired state: which commit a plan came from, dirty files, any revision's state."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import git

from reconciler import migrations
from reconciler.errors import ReconcileError
from reconciler.load import load_desired_texts
from reconciler.load_input import (
    MAX_FILES,
    FileData,
    NotRead,
    is_desired_state_file,
    not_regular,
    within_budget,
)
from reconciler.model import DesiredState


@dataclass(frozen=True)
class Revision:
    """The commit the desired-state directory was read at, and its uncommitted files."""

    commit: str | None  # None: not in a git repository, or no commit yet
    dirty_files: tuple[str, ...]


def repository(directory: Path) -> git.Repo | None:
    """The git repository holding `directory`, or None when it is in none."""
    try:
        return git.Repo(directory, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None


def revision(directory: Path) -> Revision:
    """HEAD of the repository holding `directory`, and its dirty files under it."""
    repo = repository(directory)
    if repo is None or not repo.head.is_valid():
        return Revision(commit=None, dirty_files=())
    try:
        prefix = _prefix(repo, directory)
    except RevisionError:
        prefix = ""  # a directory reached through a link from outside: every dirty file counts
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


# git's mode of a symbolic link: the blob holds the target's path.
_SYMLINK = 0o120000


@dataclass(frozen=True)
class RevisionFiles:
    """The desired-state files of one commit: {path relative to the repository: bytes, or why not read}."""

    commit: str
    prefix: str  # the desired-state directory relative to the repository root ("" at the root)
    files: dict[str, FileData]
    exists: bool  # False when the directory is absent from that commit's tree
    # The `*.sql` entries of its migrations/ directory, judged as the working tree's are.
    migrations: dict[str, FileData] = field(default_factory=dict)


def _prefix(repo: git.Repo, directory: Path) -> str:
    root = Path(repo.working_tree_dir or ".").resolve()
    try:
        prefix = directory.resolve().relative_to(root).as_posix()
    except ValueError as exc:
        raise RevisionError(f"{directory} is not inside the repository at {root}") from exc
    return "" if prefix == "." else prefix


def _commit(repo: git.Repo, ref: str) -> git.Commit:
    try:
        return repo.commit(ref)
    except (git.BadName, git.BadObject, ValueError) as exc:
        raise RevisionError(f"unknown git revision {ref!r}") from exc


def revision_files(directory: Path, ref: str) -> RevisionFiles:
    """The `*.yaml` entries directly in `directory` as the tree at `ref` has them.

    Reads git objects only: the working tree and the index are never touched,
    so uncommitted edits do not leak into a review of committed revisions.
    Only entries directly in the directory count, like `load_desired_state`,
    so both loaders see the same set of files and judge them by one rule
    (load.load_desired_texts): sizes, kinds of entry, UTF-8.
    """
    repo = repository(directory)
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
    files: dict[str, FileData] = {}
    total = 0
    for item in sorted(tree, key=lambda entry: str(entry.name)):
        if not is_desired_state_file(str(item.name)):
            continue
        files[str(item.path)] = data = _entry_data(item, len(files) + 1, total)
        if isinstance(data, bytes):
            total += len(data)
        if len(files) > MAX_FILES:
            break  # one more than the limit is enough for the loader to refuse
    return RevisionFiles(
        commit=commit.hexsha, prefix=prefix, files=files, exists=True, migrations=_migrations(tree)
    )


def _migrations(tree: git.Tree) -> dict[str, FileData]:
    """The migrations/ entries of a desired-state tree: blobs within the limits, anything else refused."""
    try:
        sub = tree / migrations.DIRECTORY
    except KeyError:
        return {}
    if not isinstance(sub, git.Tree):
        return {str(sub.path): not_regular("not a directory")}
    found: dict[str, FileData] = {}
    total = 0
    for item in sorted(sub, key=lambda entry: str(entry.name)):
        if not migrations.is_migration_file(str(item.name)):
            continue
        if len(found) >= migrations.MAX_MIGRATIONS:
            found[str(item.path)] = NotRead(0)  # one more than the limit: the loader refuses
            break
        if isinstance(item, git.Blob) and item.mode != _SYMLINK and (
            item.size > migrations.MAX_MIGRATION_BYTES or total + item.size > migrations.MAX_TOTAL_BYTES
        ):
            found[str(item.path)] = NotRead(item.size)
            continue
        found[str(item.path)] = data = _entry_data(item, 1, 0)
        if isinstance(data, bytes):
            total += len(data)
    return found


def _entry_data(item: git.Blob | git.Tree | git.Submodule, count: int, total: int) -> FileData:
    """A `*.yaml` tree entry as the loader judges it: a regular blob's bytes, or why it is not read.

    Like the working tree's reader: a symbolic link (a blob of mode 120000
    whose content is the target's path) is refused, never resolved, so a
    revision reads the same files whether or not git checks links out;
    directories and submodules are refused; a blob is read only within the
    size limits (its size comes from the object header, before reading).
    """
    if isinstance(item, git.Submodule):
        return not_regular("a git submodule")
    if isinstance(item, git.Tree):
        return not_regular("a directory")
    if item.mode == _SYMLINK:
        return not_regular("a symbolic link in git")
    if not within_budget(count, total, item.size):
        return NotRead(item.size)
    data: bytes = item.data_stream.read()
    return data


def load_revision(directory: Path, ref: str) -> DesiredState:
    """The desired state of `directory` at `ref`; LoadError names repository-relative file:line:column."""
    found = revision_files(directory, ref)
    return load_desired_texts(found.files, origin=found.prefix or ".", migrations=found.migrations)
