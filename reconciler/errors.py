"""Typed errors, one class per phase; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    """A place in the desired-state files: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the input, and where."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class ReconcileError(Exception):
    """Base of every error the CLI knows how to report."""


def printable(text: str) -> str:
    """`text` with every character that is not printable shown as an escape (\\n, \\x1b, \\u202e).

    Names, keys and file names in messages come from the desired state: a
    newline in one would forge a line of output, an escape sequence would
    drive the terminal, a bidirectional override would reorder what is shown.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class LoadError(ReconcileError):
    """The desired state is invalid; carries every problem found, sorted, in printable text."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(
            Problem(
                Location(printable(p.location.file), p.location.line, p.location.column),
                printable(p.message),
            )
            for p in problems
        )
        super().__init__("\n".join(str(p) for p in self.problems))


class SandboxError(ReconcileError):
    """The local sandbox cannot be started, stopped or inspected."""


class ConnectError(ReconcileError):
    """A node did not answer (timeout, refused, authentication)."""


class InspectError(ReconcileError):
    """A node answered but its catalogs could not be read."""


class PlanError(ReconcileError):
    """A plan cannot be computed, saved or loaded."""


class ApplyError(ReconcileError):
    """An apply failed; what was done and what was not is in the message."""
