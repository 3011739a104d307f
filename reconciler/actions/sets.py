"""Actions on replication sets (publications) and on the tables in them."""

from __future__ import annotations

from typing import Literal

from reconciler.actions.base import ActionBase, ChangeKind, DataMovement, flags_text, spec_text
from reconciler.model import ReplicationSet, SetTable


class CreateSet(ActionBase):
    """Create the set with its flags (tables are separate AddTable actions)."""

    kind: Literal["create_set"] = "create_set"
    set: ReplicationSet

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.CREATE

    @property
    def subject(self) -> str:
        return f"set {self.set.name}"

    def describe(self) -> str:
        return f"replication set {self.set.name} ({flags_text(self.set)})"


class AlterSet(ActionBase):
    kind: Literal["alter_set"] = "alter_set"
    name: str
    before: ReplicationSet
    after: ReplicationSet

    @property
    def subject(self) -> str:
        return f"set {self.name}"

    def describe(self) -> str:
        return f"replication set {self.name}: replicate {flags_text(self.before)} -> {flags_text(self.after)}"


class DropSet(ActionBase):
    """Destructive: subscribers stop receiving every table of the set."""

    kind: Literal["drop_set"] = "drop_set"
    name: str

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.DESTROY

    @property
    def subject(self) -> str:
        return f"set {self.name}"

    def describe(self) -> str:
        return f"replication set {self.name}"


class AddTable(ActionBase):
    """Add a table to a set; with `synchronize_data` subscribers copy its filtered rows.

    `synced_at` names subscribers whose subscription already marks the table
    synced (pglogical.local_sync_status: it was in the set before, removed by
    hand). pglogical skips a queued sync for such a table ("already being
    synchronized"), so those subscribers copy nothing: the rows written
    meanwhile come only by verify --repair, and the label says so.
    """

    kind: Literal["add_table"] = "add_table"
    set_name: str
    table: str
    spec: SetTable
    synchronize_data: bool = True
    synced_at: tuple[str, ...] = ()

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.CREATE

    @property
    def data_movement(self) -> DataMovement:
        if self.synced_at:
            return DataMovement.RESYNC_NEEDED
        return DataMovement.INITIAL_COPY if self.synchronize_data else DataMovement.NONE

    @property
    def subject(self) -> str:
        return f"table {self.set_name}/{self.table}"

    def describe(self) -> str:
        text = f"table {self.table} in set {self.set_name}{spec_text(self.spec)}"
        if self.synced_at:
            text += (
                f" (no copy to {','.join(self.synced_at)}: the table is already marked synced there;"
                " apply copies its rows by key)"
            )
        return text


class ReplaceTable(ActionBase):
    """Filter or column list changed: remove + add in one transaction (pglogical has no alter).

    A change, not a destroy: the provider does both in one transaction, so
    no change is lost and no WAL position moves. But rows that newly pass the
    filter are not copied and rows that no longer pass are not removed
    downstream: the data needs `reconcile verify`.
    """

    kind: Literal["replace_table"] = "replace_table"
    set_name: str
    table: str
    before: SetTable
    after: SetTable

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.RESYNC_NEEDED

    @property
    def subject(self) -> str:
        return f"table {self.set_name}/{self.table}"

    def describe(self) -> str:
        return f"table {self.table} in set {self.set_name}:{spec_text(self.before)} ->{spec_text(self.after)}"


class RemoveTable(ActionBase):
    """Destructive: subscribers stop receiving the table's changes."""

    kind: Literal["remove_table"] = "remove_table"
    set_name: str
    table: str

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.DESTROY

    @property
    def subject(self) -> str:
        return f"table {self.set_name}/{self.table}"

    def describe(self) -> str:
        return f"table {self.table} in set {self.set_name}"


class SetReplicaIdentity(ActionBase):
    """Native engine: give a filtered table the replica identity its publication needs.

    PostgreSQL refuses the application's UPDATE and DELETE on a table whose
    publication row filter reads a column outside the replica identity, and
    on one whose column list does not cover it (both measured). `after` is
    "index(<columns>)": a unique index on the key plus the filter columns
    (FULL is not covered by a column list, and pglogical's apply worker
    fails on FULL tables during an engine switch). "full" is understood too.
    """

    kind: Literal["set_replica_identity"] = "set_replica_identity"
    table: str
    before: str
    after: str

    @property
    def subject(self) -> str:
        return f"table {self.table}"

    def describe(self) -> str:
        return f"table {self.table}: replica identity {self.before} -> {self.after}"
