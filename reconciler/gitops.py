"""Git revisions of the desired state: which commit a plan came from, and whether files are dirty."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git


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
