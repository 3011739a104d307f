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

import time
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
from reconciler.model import SetTable
from reconciler.row_filter import FilterRefused
from reconciler.secrets import scrub

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


def run(conn: psycopg.Connection[Any], statements: list[sql.Composed], *, transaction: bool = False) -> None:
    """Send the statements one by one (in one transaction when asked): how an engine changes a node."""
    if transaction:
        with conn.transaction():
            run(conn, statements)
        return
    for statement in statements:
        conn.execute(statement)


# A restarted subscription's worker shows in pg_stat_activity within a second
# or two (its manager or launcher is woken by the enable).
WORKER_START_TIMEOUT = 10.0


def restart(
    conn: psycopg.Connection[Any], statements: list[sql.Composed], running: Callable[[], bool]
) -> Outcome:
    """Restart a subscription's worker unless it runs: the statements, then a bounded wait until it does."""
    if running():
        return ALREADY
    run(conn, statements)
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while not running():
        if time.monotonic() > deadline:
            return Outcome(
                Result.DONE,
                f" (no worker after {WORKER_START_TIMEOUT:g} s: `reconcile status` says why)",
            )
        time.sleep(0.1)
    return DONE


def same_membership(current: SetTable, wanted: SetTable) -> bool:
    """Whether a table's live membership in a set is the wanted one.

    Both filters are PostgreSQL's normal forms: the live one read back, the
    wanted one normalised by inspection before the diff (the plan's
    fingerprint check says the node is as inspected), so text equality is
    the comparison; the engines run no probe of their own.
    """

    def columns(t: SetTable) -> tuple[str, ...] | None:
        return tuple(sorted(t.columns)) if t.columns is not None else None

    return columns(current) == columns(wanted) and current.row_filter == wanted.row_filter


def guarded(action: Action, body: Callable[[], Outcome]) -> Outcome:
    """body(), its failures as one ApplyError naming node, action and cause, without secrets."""
    try:
        return body()
    except (ApplyError, FilterRefused) as exc:
        message = str(exc)
        cause: Exception = exc
    except psycopg.Error as exc:
        message = pg_message(exc)
        cause = exc
    raise ApplyError(scrub(f"{action.node}: {action.symbol} {action.describe()}: {message}")) from cause


def pg_message(exc: psycopg.Error) -> str:
    """A PostgreSQL error as one line, with its detail, without passwords a DSN in it may carry."""
    diag = exc.diag
    message = diag.message_primary or str(exc).strip()
    if diag.message_detail:
        message += f" ({diag.message_detail})"
    return scrub(message)


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
