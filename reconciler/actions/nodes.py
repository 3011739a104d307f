"""Actions on a pglogical node object and on its server's settings."""

from __future__ import annotations

from typing import Literal

from reconciler.actions.base import ActionBase, ChangeKind, DataMovement
from reconciler.model import wal_keep_bytes


class CreateNode(ActionBase):
    kind: Literal["create_node"] = "create_node"
    name: str
    dsn: str

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.CREATE

    @property
    def subject(self) -> str:
        return f"node {self.name}"

    def describe(self) -> str:
        return f"pglogical node {self.name}"


class ChangeNodeDsn(ActionBase):
    """The local node's interface DSN differs; pglogical has no alter, a new interface is added."""

    kind: Literal["change_node_dsn"] = "change_node_dsn"
    name: str
    before: str
    after: str

    @property
    def subject(self) -> str:
        return f"node {self.name}"

    def describe(self) -> str:
        return f"pglogical node {self.name}: interface dsn changes"


class DropNode(ActionBase):
    """Destructive: the node's sets go with it, and whatever its slots held."""

    kind: Literal["drop_node"] = "drop_node"
    name: str

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.DESTROY

    @property
    def subject(self) -> str:
        return f"node {self.name}"

    def describe(self) -> str:
        return f"pglogical node {self.name}"


class SetWalKeepSize(ActionBase):
    """max_slot_wal_keep_size of the node's server: bounds the WAL a slot may hold back.

    A server-wide setting (ALTER SYSTEM + reload, no restart): it applies to
    every database of that server, so the plan emits it once per server.
    """

    kind: Literal["set_wal_keep_size"] = "set_wal_keep_size"
    before: str
    after: str

    @property
    def destructive(self) -> bool:
        """Lowering the limit (or setting one) can invalidate slots that already hold more WAL."""
        before, after = wal_keep_bytes(self.before), wal_keep_bytes(self.after)
        return after != -1 and (before == -1 or after < before)

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.SLOT_DROPPED if self.destructive else DataMovement.NONE

    @property
    def subject(self) -> str:
        return "setting max_slot_wal_keep_size"

    def describe(self) -> str:
        return f"server setting max_slot_wal_keep_size: {self.before} -> {self.after} (whole server)"
