"""The apply record each node keeps in `reconcile.apply_log`: who changed what, from which commit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import psycopg
from psycopg import sql

from reconciler.apply import locks

# The tool's own schema; pglogical never replicates it (it is in no set).
_DDL = [
    sql.SQL("CREATE SCHEMA IF NOT EXISTS reconcile"),
    sql.SQL(
        "CREATE TABLE IF NOT EXISTS reconcile.apply_log ("
        " id bigserial PRIMARY KEY,"
        " applied_at timestamptz NOT NULL DEFAULT now(),"
        " os_user text NOT NULL,"
        " client_host text NOT NULL,"
        " tool_version text NOT NULL,"
        " desired_commit text,"
        " result text NOT NULL,"  # running | ok | failed
        " actions jsonb NOT NULL,"
        " message text)"
    ),
]


# What a record's desired_commit says when the desired state was in no git
# repository (apply warned, or --allow-no-git): not a commit, and not the
# NULL of a repository without one; short enough for status's 12 characters.
NOT_IN_GIT = "not in git"


class Result(StrEnum):
    """What a record says of its apply: still running (or killed while it ran), or how it ended."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    # Stopped by SIGINT/SIGTERM; also how `last` reads a `running` record
    # whose apply session is gone (killed: nobody holds the apply lock).
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class ApplyRecord:
    applied_at: datetime
    os_user: str
    client_host: str
    tool_version: str
    desired_commit: str | None
    result: str  # a Result's value, as read back (a record written by hand may hold anything)
    actions: list[dict[str, str]]
    message: str | None


def start(
    conn: psycopg.Connection,
    *,
    os_user: str,
    client_host: str,
    tool_version: str,
    desired_commit: str | None,
    dirty: bool,
    actions: list[dict[str, str]],
    no_git: bool = False,
) -> int:
    """Record, before the first action, what this apply is about to do here ('running').

    Written first so that an apply killed half-way still leaves its record;
    `finish` completes it. Returns the record's id. `dirty`: the desired state
    had uncommitted changes, so the commit alone is not what was applied; the
    record says "<commit> (dirty)" (for people and queries; never parsed back).
    `no_git`: the directory was in no git repository; the record says NOT_IN_GIT.
    """
    commit = f"{desired_commit} (dirty)" if dirty and desired_commit is not None else desired_commit
    if commit is None and no_git:
        commit = NOT_IN_GIT
    with conn.transaction():
        for statement in _DDL:
            conn.execute(statement)
        row = conn.execute(
            sql.SQL(
                "INSERT INTO reconcile.apply_log"
                " (os_user, client_host, tool_version, desired_commit, result, actions)"
                " VALUES ({}, {}, {}, {}, {}, {}) RETURNING id"
            ).format(
                sql.Literal(os_user),
                sql.Literal(client_host),
                sql.Literal(tool_version),
                sql.Literal(commit),
                sql.Literal(Result.RUNNING.value),
                sql.Literal(json.dumps(actions, sort_keys=True)),
            )
        ).fetchone()
    assert row is not None
    return int(row[0])


def finish(
    conn: psycopg.Connection,
    record: int,
    *,
    result: Result,
    actions: list[dict[str, str]],
    message: str | None,
) -> None:
    """Complete a record with each action's outcome and how the apply ended (OK or FAILED)."""
    conn.execute(
        sql.SQL(
            "UPDATE reconcile.apply_log SET result = {}, actions = {}, message = {} WHERE id = {}"
        ).format(
            sql.Literal(result.value),
            sql.Literal(json.dumps(actions, sort_keys=True)),
            sql.Literal(message),
            sql.Literal(record),
        )
    )


def last(conn: psycopg.Connection) -> ApplyRecord | None:
    """The newest record on this node, or None when it was never applied to.

    A `running` record whose apply no longer holds the node's lock (the
    process was killed) reads as `interrupted`.
    """
    exists = conn.execute("SELECT to_regclass('reconcile.apply_log') IS NOT NULL").fetchone()
    if exists is None or not exists[0]:
        return None
    row = conn.execute(
        sql.SQL(
            "SELECT applied_at, os_user, client_host, tool_version, desired_commit,"
            " CASE WHEN result = {running} AND NOT EXISTS ("
            "   SELECT 1 FROM pg_catalog.pg_locks l"
            "   WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {classid}"
            "   AND l.objid = {objid} AND l.objsubid = 1 AND l.database ="
            "   (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))"
            " THEN {interrupted} ELSE result END,"
            " actions, message FROM reconcile.apply_log ORDER BY id DESC LIMIT 1"
        ).format(
            running=sql.Literal(Result.RUNNING.value),
            interrupted=sql.Literal(Result.INTERRUPTED.value),
            classid=sql.Literal(locks.APPLY_LOCK_KEY >> 32),
            objid=sql.Literal(locks.APPLY_LOCK_KEY & 0xFFFFFFFF),
        )
    ).fetchone()
    if row is None:
        return None
    return ApplyRecord(*row)
