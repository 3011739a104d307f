"""Repair one subscriber table: upsert missing and differing rows from their provider, delete stale rows.

Writes go to the subscriber as ordinary local changes, in small batches
(one short transaction each), so that its own subscribers receive them by
normal replication: repairing a region also heals the nation. Never
TRUNCATE: a region table holds the rows of every district that feeds it
(REPLICATION-NOTES "Initial copy and resync").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from psycopg import sql

from reconciler.model import Engine
from reconciler.verify import prune
from reconciler.verify.compare import Outcome
from reconciler.verify.node import TableSide, statement, table_identifier, values_record

BATCH = 200


@dataclass(frozen=True)
class RepairResult:
    """What a repair did: rows inserted, updated, deleted; stale rows spared because they pass again."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    spared: int = 0
    # A moved node's old rows deleted here by a delete that does not replicate (prune.py).
    pruned: int = 0

    @property
    def writes(self) -> int:
        return self.inserted + self.updated + self.deleted


def _chunks(keys: Sequence[str], size: int) -> list[Sequence[str]]:
    return [keys[i : i + size] for i in range(0, len(keys), size)]


def upsert_statement(table: str, key: str, columns: Sequence[str]) -> sql.Composed:
    """INSERT ... ON CONFLICT: overwrite only when a compared column differs (no empty updates replicate)."""
    others = [c for c in columns if c != key]
    conflict: sql.Composable
    if others:
        conflict = sql.SQL("DO UPDATE SET {} WHERE ROW({}) IS DISTINCT FROM ROW({})").format(
            sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in others
            ),
            sql.SQL(", ").join(sql.Identifier("t", c) for c in others),
            sql.SQL(", ").join(sql.Identifier("excluded", c) for c in others),
        )
    else:
        conflict = sql.SQL("DO NOTHING")
    return statement("upsert").format(
        table=table_identifier(table),
        key=sql.Identifier(key),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        selected=sql.SQL(", ").join(sql.Identifier("r", c) for c in columns),
        record=values_record(columns, sql.Identifier("reconcile_row", "v")),
        conflict=conflict,
    )


def delete_statement(table: str, key: str) -> sql.Composed:
    return statement("delete").format(table=table_identifier(table), key=sql.Identifier(key))


def repair(
    subscriber: TableSide,
    providers: Mapping[str, TableSide],
    outcome: Outcome,
    batch: int = BATCH,
    delete_stale: bool = True,
    moved: Mapping[str, TableSide] | None = None,
    engine: Engine = Engine.PGLOGICAL,
    started: Callable[[int], None] | None = None,
    copied: Callable[[int, int], None] | None = None,
) -> RepairResult:
    """Make the subscriber hold exactly the providers' passing rows found different in `outcome`.

    Values are fetched from the provider at repair time, and only rows that
    still pass there are written. Stale keys are re-checked at every provider
    right before the delete: a row approved since the comparison is spared.
    `delete_stale=False` writes only missing and differing rows: a delete
    replicates upstream, and a row stale here (a moved district's history at
    its old region) may be one the tier above must keep.
    Moved rows (`outcome.moved`, the sides of the nodes that moved in
    `moved`) are deleted by prune.delete_moved, which sends nothing upstream,
    once re-checked: still passed by no provider, still held by the moved node.
    `started(n)` is told the rows to write before the first batch and
    `copied(rows, bytes)` each batch written (apply's progress, pending_rows.py).
    """
    inserted = updated = deleted = spared = 0
    upsert = upsert_statement(subscriber.table, subscriber.key, subscriber.columns)
    todo = {
        provider: sorted(set(outcome.missing.get(provider, ())) | set(outcome.differing.get(provider, ())))
        for provider in sorted(providers)
    }
    if started is not None:
        started(sum(len(keys) for keys in todo.values()))
    for provider, keys in todo.items():
        for chunk in _chunks(keys, batch):
            rows = providers[provider].fetch(chunk)
            if not rows:
                continue
            document = "[" + ",".join(rows) + "]"
            for (was_insert,) in subscriber.session.execute(upsert, {"rows": document}):
                if was_insert:
                    inserted += 1
                else:
                    updated += 1
            if copied is not None:
                copied(len(rows), len(document.encode()))
    delete = delete_statement(subscriber.table, subscriber.key)
    for chunk in _chunks(list(outcome.stale) if delete_stale else [], batch):
        passing: set[str] = set()
        for side in providers.values():
            passing |= side.passing(chunk)
        doomed = [k for k in chunk if k not in passing]
        spared += len(chunk) - len(doomed)
        if doomed:
            deleted += len(subscriber.session.execute(delete, {"keys": doomed}))
    pruned = 0
    for node, moved_keys in sorted(outcome.moved.items()):
        moved_side = (moved or {}).get(node)
        if moved_side is None or not prune.can_prune(engine):
            continue
        for chunk in _chunks(list(moved_keys), batch):
            passing = set().union(*(p.passing(chunk) for p in providers.values()))
            still = moved_side.passing(chunk)
            doomed = [k for k in chunk if k in still and k not in passing]
            pruned += prune.delete_moved(subscriber, doomed, engine)
    return RepairResult(inserted=inserted, updated=updated, deleted=deleted, spared=spared, pruned=pruned)
