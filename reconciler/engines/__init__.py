"""Engines: turn typed actions into SQL for one replication technology and run them on a node.

Each engine module offers the same three functions:

* ``supports(action) -> str | None``: None when the engine can run the
  action, else why not (the planner reports it as a blocker, before apply);
* ``statements(action) -> list[psycopg.sql.Composed]``: pure, what runs on
  ``action.node``; the one place an engine builds its SQL;
* ``execute(conn, action, *, provider_conn=None) -> Outcome``: reads the node
  to see whether the action is already done, else runs exactly
  ``statements(action)`` on the node's autocommit connection; raises
  ``ApplyError`` naming node, action and cause.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from types import ModuleType
from typing import Any, Protocol

import psycopg
from psycopg import sql

from reconciler.actions import Action
from reconciler.errors import ApplyError
from reconciler.model import Engine as EngineName

ProviderConn = Callable[[str], "psycopg.Connection[Any] | None"]


class Result(Enum):
    """What `execute` found: it ran the action's statements, or the node already was as wanted."""

    DONE = "done"
    ALREADY = "already done"


@dataclass(frozen=True)
class Outcome:
    """One action's outcome; `detail` is the text printed after the result word, e.g. " (slot ...)"."""

    result: Result
    detail: str = ""

    def __str__(self) -> str:
        return self.result.value + self.detail


DONE = Outcome(Result.DONE)
ALREADY = Outcome(Result.ALREADY)


class Engine(Protocol):
    """What the planner and `apply` need from an engine module."""

    def supports(self, action: Action) -> str | None: ...

    def statements(self, action: Action) -> list[sql.Composed]: ...

    def execute(
        self,
        conn: psycopg.Connection[Any],
        action: Action,
        *,
        provider_conn: ProviderConn | None = None,
    ) -> Outcome: ...


def engine_for(name: EngineName | str) -> Engine:
    """The engine module for the desired state's `engine:` value."""
    module: ModuleType
    if name == EngineName.PGLOGICAL:
        from reconciler.engines import pglogical as module
    elif name == EngineName.NATIVE:
        from reconciler.engines import native as module
    else:
        raise ApplyError(f"engine {name!r} is not implemented yet")
    engine: Engine = module
    return engine
