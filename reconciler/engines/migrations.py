"""Both engines: run one schema migration on its node in one transaction, record it, retry on locks.

The migration's statements come from the desired state (parsed offline by
reconciler/migrations.py); they run here and nowhere else, inside one
transaction with a short lock_timeout (an ALTER TABLE queued behind a long
reader would stall every writer of the table behind it), a statement_timeout
and session_replication_role = origin, as every apply write. The record row
is written in the same transaction, so a migration is recorded exactly when
it took effect.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from reconciler.actions import RunMigration
from reconciler.engines import ALREADY, DONE, Outcome, ProviderConn, run
from reconciler.errors import ApplyError

LOCK_TIMEOUT = "2s"
STATEMENT_TIMEOUT = "30s"
# A lock that is busy now is often free a second later (a long report, an
# autovacuum): a few tries, then the apply reports it and a rerun continues.
ATTEMPTS = 3
RETRY_PAUSE = 1.0
# Leaves-first: how long the slots feeding this node may take to confirm the
# old shape's last change (a quiet provider confirms within about 10 s).
SLOT_WAIT = 30.0
POLL = 0.2

RECORD_DDL = [
    sql.SQL("CREATE SCHEMA IF NOT EXISTS reconcile"),
    sql.SQL(
        "CREATE TABLE IF NOT EXISTS reconcile.schema_migrations ("
        " id integer PRIMARY KEY,"
        " name text NOT NULL,"
        " checksum text NOT NULL,"
        " leaves_first boolean NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(),"
        " os_user text,"
        " tool_version text,"
        " desired_commit text,"
        " wal_lsn pg_lsn NOT NULL DEFAULT pg_current_wal_lsn())"
    ),
]

# Set by apply on each session it locks (apply/executor.py): who applies, from which commit.
CONTEXT = ("reconcile.apply_os_user", "reconcile.apply_tool_version", "reconcile.apply_commit")


def statements(action: RunMigration) -> list[sql.Composed]:
    """What runs on the node, in one transaction: settings, the record table, the migration, its record."""
    m = action.migration

    def setting(name: str) -> sql.Composed:
        return sql.SQL("current_setting({}, true)").format(sql.Literal(name))

    return [
        sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)),
        sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(STATEMENT_TIMEOUT)),
        sql.SQL("SET LOCAL session_replication_role = {}").format(sql.Literal("origin")),
        *(sql.Composed([statement]) for statement in RECORD_DDL),
        # The desired state's own SQL, each statement as parsed offline: the
        # one place the tool runs SQL it did not compose.
        *(sql.Composed([sql.SQL(text)]) for text in m.statements),
        sql.SQL(
            "INSERT INTO reconcile.schema_migrations"
            " (id, name, checksum, leaves_first, os_user, tool_version, desired_commit)"
            " VALUES ({}, {}, {}, {}, {}, {}, {})"
        ).format(
            sql.Literal(m.id),
            sql.Literal(m.name),
            sql.Literal(m.checksum),
            sql.Literal(m.leaves_first),
            *(setting(name) for name in CONTEXT),
        ),
    ]


def recorded_checksum(conn: psycopg.Connection[Any], migration_id: int) -> str | None:
    """The checksum this node recorded for the migration, None when it has not run here."""
    row = conn.execute("SELECT to_regclass('reconcile.schema_migrations') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return None
    found = conn.execute(
        "SELECT checksum FROM reconcile.schema_migrations WHERE id = %s", (migration_id,)
    ).fetchone()
    return str(found[0]) if found is not None else None


def execute(
    conn: psycopg.Connection[Any], action: RunMigration, provider_conn: ProviderConn | None
) -> Outcome:
    """Run the migration unless recorded; leaves-first waits for its providers' slots first."""
    m = action.migration
    recorded = recorded_checksum(conn, m.id)
    if recorded == m.checksum:
        return ALREADY
    if recorded is not None:
        raise ApplyError(
            f"migration {m.name} ran here with another checksum ({recorded[:12]}); nothing was run"
        )
    for provider, slot in action.providers:
        pconn = provider_conn(provider) if provider_conn is not None else None
        if pconn is None:
            raise ApplyError(
                f"provider {provider} does not answer: its slot {slot} cannot be seen to confirm the old"
                " shape's last change, so the migration waits"
            )
        _wait_confirmed(pconn, provider, slot)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            run(conn, statements(action), transaction=True)
            if attempt == 1:
                return DONE
            return Outcome(DONE.result, f" (after {attempt} tries: a lock was busy)")
        except pgerrors.LockNotAvailable:
            if attempt == ATTEMPTS:
                raise
            time.sleep(RETRY_PAUSE * attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


def _wait_confirmed(pconn: psycopg.Connection[Any], provider: str, slot: str) -> None:
    """Until `slot` on the provider confirmed the provider's current WAL position; bounded by SLOT_WAIT."""
    query = (
        "SELECT s.confirmed_flush_lsn >= %s::pg_lsn FROM pg_catalog.pg_replication_slots AS s"
        " WHERE s.slot_name = %s AND s.database = pg_catalog.current_database()"
    )
    row = pconn.execute("SELECT pg_catalog.pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    deadline = time.monotonic() + SLOT_WAIT
    while True:
        found = pconn.execute(query, (row[0], slot)).fetchone()
        if found is None:
            # Fail closed: a slot that is not there cannot confirm the old shape's last change.
            raise ApplyError(
                f"slot {slot} is not on {provider}: it cannot confirm that no change of the old shape is"
                " still queued for this node, so the leaves-first migration waits"
            )
        if found[0]:
            return
        if time.monotonic() > deadline:
            raise ApplyError(
                f"slot {slot} on {provider} has not confirmed {row[0]} within {SLOT_WAIT:g} s: changes of"
                " the old shape may still be queued for this node; the migration waits (rerun apply)"
            )
        time.sleep(POLL)
