"""Remove a moved node's old rows from its former parent without the delete replicating upstream.

After a district moves from region A to region B, A still holds the
district's history. It is stale at A, but an ordinary DELETE there is a
change A sends to the nation (pglogical passes deletes through the
`(<filter>) IS NOT FALSE` row filter: the old tuple holds only the key),
and the nation would lose the rows B now delivers. pglogical decodes each
change with the catalog as of that change (a historic snapshot;
reference/pglogical-2.4.md section 2, measured): a table taken out of its
sets, the rows deleted and the table added back, all in ONE transaction,
sends nothing for those deletes, and every other transaction, before or
after, sees the table in its sets as always. The transaction is kept short
(one batch of keys) because the set change takes a lock on the table.

The native engine's route is the same in spirit: pgoutput, too, decodes a
change with the catalog as of that change, so the publications that hold
the table stop publishing deletes, the rows are deleted and the
publications publish deletes again, in ONE transaction: nothing is sent for
those deletes (measured, tests/test_moves_live.py), and no other
transaction sees the publications changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from reconciler.model import Engine
from reconciler.verify.node import TableSide, statement, table_identifier

BATCH = 500
# The set change locks the table: a writer there (the apply worker of the
# node's other children) waits at most this long; past it, the batch fails
# and the rows stay for the next repair.
LOCK_TIMEOUT = "5s"


class PruneRefused(Exception):
    """Moved rows left in place: the delete could reach other rows, or the sets did not read back."""


def can_prune(engine: Engine) -> bool:
    """Whether moved rows can be deleted here without the delete replicating (both engines can)."""
    return engine in (Engine.PGLOGICAL, Engine.NATIVE)


def delete_moved(side: TableSide, keys: Sequence[str], engine: Engine, batch: int = BATCH) -> int:
    """Delete these keys at the side's node, each batch in one transaction that replicates nothing.

    Returns the rows deleted. Only moved keys may be given: rows that no
    provider of this node passes and that the moved node holds (re-checked
    by the caller right before).
    """
    if not keys or not can_prune(engine):
        return 0
    session = side.session
    delete = statement("delete").format(table=table_identifier(side.table), key=sql.Identifier(side.key))
    deleted = 0
    for start in range(0, len(keys), batch):
        chunk = list(keys[start : start + batch])
        with session.conn.transaction():
            session.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
            # The lock replication_set_add_table takes: no set change, new
            # trigger or foreign key to the table lands between the reads
            # below and the commit.
            session.execute(
                sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table_identifier(side.table))
            )
            found = session.execute(statement("prune_blockers"), {"table": side.table})
            blockers = [str(r[0]) for r in found]
            if blockers:
                raise PruneRefused(
                    f"{side.table}: moved rows not removed at {session.node}: a delete here would reach "
                    f"other rows through {', '.join(blockers)}; nothing deleted"
                )
            if engine is Engine.NATIVE:
                deleted += _delete_unpublished(side, delete, chunk)
                continue
            member = _membership(side)
            for name, _, _ in member:
                session.execute(statement("set_remove_table"), {"set": name, "table": side.table})
            deleted += len(session.execute(delete, {"keys": chunk}))
            for name, columns, row_filter in member:
                session.execute(
                    statement("set_add_table"),
                    {"set": name, "table": side.table, "columns": columns, "row_filter": row_filter},
                )
            back = _membership(side)
            if back != member:
                # Raised inside the transaction: it rolls back, deletes included.
                raise PruneRefused(
                    f"{side.table}: moved rows not removed at {session.node}: its set membership read "
                    f"back as {back!r}, not {member!r}; rolled back"
                )
    return deleted


Flags = list[tuple[str, bool, bool, bool, bool]]


def _delete_unpublished(side: TableSide, delete: sql.Composed, keys: list[str]) -> int:
    """Native, inside the caller's transaction: the deletes of `keys` with no publication publishing
    deletes meanwhile; every publication's operations read back as they were, or all rolls back."""
    session = side.session
    flags = _publication_flags(side)
    for name, insert, update, _, truncate in flags:
        session.execute(_publish(name, insert, update, False, truncate))
    deleted = len(session.execute(delete, {"keys": keys}))
    for name, insert, update, remove, truncate in flags:
        session.execute(_publish(name, insert, update, remove, truncate))
    back = _publication_flags(side)
    if back != flags:
        raise PruneRefused(
            f"{side.table}: moved rows not removed at {session.node}: its publications read back as"
            f" {back!r}, not {flags!r}; rolled back"
        )
    return deleted


def _publish(name: str, insert: bool, update: bool, remove: bool, truncate: bool) -> sql.Composed:
    operations = [
        op
        for op, on in (("insert", insert), ("update", update), ("delete", remove), ("truncate", truncate))
        if on
    ]
    return sql.SQL("ALTER PUBLICATION {} SET (publish = {})").format(
        sql.Identifier(name), sql.Literal(", ".join(operations))
    )


def _publication_flags(side: TableSide) -> Flags:
    return [
        (str(name), bool(i), bool(u), bool(d), bool(t))
        for name, i, u, d, t in side.session.execute(statement("publication_flags"), {"table": side.table})
    ]


Membership = list[tuple[str, list[str] | None, str | None]]


def _membership(side: TableSide) -> Membership:
    """The sets holding the table here, each with its column list and row filter (sorted by set)."""
    return [
        (str(name), list(columns) if columns is not None else None, None if f is None else str(f))
        for name, columns, f in side.session.execute(statement("set_membership"), {"table": side.table})
    ]
