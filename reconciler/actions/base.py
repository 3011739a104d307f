"""What every action has: its node, its change kind (the plan's symbol), its safety flags."""

from __future__ import annotations

from enum import StrEnum

from reconciler.model import Frozen, ReplicationSet, SetTable


class DataMovement(StrEnum):
    NONE = "none"
    INITIAL_COPY = "initial_copy"  # rows are copied from a provider
    RESYNC_NEEDED = "resync_needed"  # rows already copied may now be wrong: run verify
    SLOT_DROPPED = "slot_dropped"  # a provider's slot goes; its retained WAL is released


class ChangeKind(StrEnum):
    """What an action does to its object; the plan's symbol and summary come from it alone.

    DESTROY and REPLACE lose data or a WAL position (every such action is
    `destructive`); CREATE and CHANGE do not, except that a CHANGE of a
    server setting can (SetWalKeepSize says so itself).
    """

    CREATE = "create"
    CHANGE = "change"
    DESTROY = "destroy"
    REPLACE = "replace"  # dropped and created again: one destroy and one create

    @property
    def symbol(self) -> str:
        """Terraform-style marker: + create, ~ change, - destroy, -/+ replace."""
        return _SYMBOLS[self]


_SYMBOLS = {
    ChangeKind.CREATE: "+",
    ChangeKind.CHANGE: "~",
    ChangeKind.DESTROY: "-",
    ChangeKind.REPLACE: "-/+",
}


class ActionBase(Frozen):
    node: str

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.CHANGE

    @property
    def destructive(self) -> bool:
        """Loses data or a WAL position: runs only with --allow-destroy."""
        return self.change in (ChangeKind.DESTROY, ChangeKind.REPLACE)

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.NONE

    @property
    def symbol(self) -> str:
        return self.change.symbol

    @property
    def rank(self) -> tuple[int, ...]:
        """Order among actions of one phase before the node name (a migration's rollout step)."""
        return ()

    @property
    def subject(self) -> str:
        """Stable identity of the object acted on, within its node."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for humans, without the node (renderers group by node)."""
        raise NotImplementedError


def flags_text(s: ReplicationSet) -> str:
    return ",".join(s.operations()) or "nothing"


def spec_text(t: SetTable) -> str:
    parts = []
    if t.row_filter is not None:
        parts.append(f" filter={t.row_filter}")
    if t.columns is not None:
        parts.append(f" columns=[{','.join(t.columns)}]")
    return "".join(parts) or " (all rows, all columns)"
