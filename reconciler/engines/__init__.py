"""Engines: turn typed actions into SQL for one replication technology and run them on a node.

Each engine module offers the same two functions:

* ``statements(action) -> list[psycopg.sql.Composed]``: pure, what would run on
  ``action.node`` (for display and tests);
* ``execute(conn, action, *, provider_conn=None) -> str``: runs the action
  idempotently on the node's autocommit connection and returns a one-line
  outcome, or raises ``ApplyError``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol

import psycopg
from psycopg import sql

from reconciler.actions import Action
from reconciler.errors import ApplyError

ProviderConn = Callable[[str], "psycopg.Connection[Any] | None"]

# What `execute` returns: the action ran, or the node already was as wanted.
DONE = "done"
ALREADY = "already done"


class Engine(Protocol):
    """What `apply` needs from an engine module."""

    def statements(self, action: Action) -> list[sql.Composed]: ...

    def execute(
        self,
        conn: psycopg.Connection[Any],
        action: Action,
        *,
        provider_conn: ProviderConn | None = None,
    ) -> str: ...


def engine_for(name: str) -> Engine:
    """The engine module for the desired state's `engine:` value."""
    module: ModuleType
    if name == "pglogical":
        from reconciler.engines import pglogical as module
    elif name == "native":
        from reconciler.engines import native as module
    else:
        raise ApplyError(f"engine {name!r} is not implemented yet")
    engine: Engine = module
    return engine
