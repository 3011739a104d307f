"""Preflight: problems only a live node can reveal, reported as blocking errors in the plan."""

from __future__ import annotations

from reconciler.model import Frozen


class Blocker(Frozen):
    """A problem that stops `plan` (exit 1) and makes `apply` refuse, naming node and table."""

    node: str
    table: str | None = None
    message: str
