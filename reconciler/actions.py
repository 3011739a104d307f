"""Typed, frozen actions: what the diff yields, the plan orders, and engines execute.

Each action names the node it runs on and carries its own flags: whether it
destroys something (`destructive`) and what it does to data
(`data_movement`). Nothing anywhere decides safety by reading SQL text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from reconciler.model import Frozen, ReplicationSet, SetTable, Subscription, wal_keep_bytes


class DataMovement(StrEnum):
    NONE = "none"
    INITIAL_COPY = "initial_copy"  # rows are copied from a provider
    RESYNC_NEEDED = "resync_needed"  # rows already copied may now be wrong: run verify
    SLOT_DROPPED = "slot_dropped"  # a provider's slot goes; its retained WAL is released


class ActionBase(Frozen):
    node: str

    @property
    def destructive(self) -> bool:
        return False

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.NONE

    @property
    def symbol(self) -> str:
        """Terraform-style marker: + create, ~ change, - destroy, -/+ replace."""
        return "~"

    @property
    def subject(self) -> str:
        """Stable identity of the object acted on, within its node."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for humans, without the node (renderers group by node)."""
        raise NotImplementedError


# -- node ------------------------------------------------------------------


class CreateNode(ActionBase):
    kind: Literal["create_node"] = "create_node"
    name: str
    dsn: str

    @property
    def symbol(self) -> str:
        return "+"

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
    kind: Literal["drop_node"] = "drop_node"
    name: str

    @property
    def destructive(self) -> bool:
        return True

    @property
    def symbol(self) -> str:
        return "-"

    @property
    def subject(self) -> str:
        return f"node {self.name}"

    def describe(self) -> str:
        return f"pglogical node {self.name}"


# -- server settings ---------------------------------------------------------


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


# -- replication sets --------------------------------------------------------


class CreateSet(ActionBase):
    """Create the set with its flags (tables are separate AddTable actions)."""

    kind: Literal["create_set"] = "create_set"
    set: ReplicationSet

    @property
    def symbol(self) -> str:
        return "+"

    @property
    def subject(self) -> str:
        return f"set {self.set.name}"

    def describe(self) -> str:
        return f"replication set {self.set.name} ({_flags(self.set)})"


class AlterSet(ActionBase):
    kind: Literal["alter_set"] = "alter_set"
    name: str
    before: ReplicationSet
    after: ReplicationSet

    @property
    def subject(self) -> str:
        return f"set {self.name}"

    def describe(self) -> str:
        return f"replication set {self.name}: replicate {_flags(self.before)} -> {_flags(self.after)}"


class DropSet(ActionBase):
    kind: Literal["drop_set"] = "drop_set"
    name: str

    @property
    def destructive(self) -> bool:
        return True

    @property
    def symbol(self) -> str:
        return "-"

    @property
    def subject(self) -> str:
        return f"set {self.name}"

    def describe(self) -> str:
        return f"replication set {self.name}"


# -- tables in sets ------------------------------------------------------------


class AddTable(ActionBase):
    """Add a table to a set; with `synchronize_data` subscribers copy its filtered rows."""

    kind: Literal["add_table"] = "add_table"
    set_name: str
    table: str
    spec: SetTable
    synchronize_data: bool = True

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.INITIAL_COPY if self.synchronize_data else DataMovement.NONE

    @property
    def symbol(self) -> str:
        return "+"

    @property
    def subject(self) -> str:
        return f"table {self.set_name}/{self.table}"

    def describe(self) -> str:
        return f"table {self.table} in set {self.set_name}{_spec(self.spec)}"


class ReplaceTable(ActionBase):
    """Filter or column list changed: remove + add in one transaction (pglogical has no alter).

    Rows that newly pass the filter are not copied and rows that no longer
    pass are not removed downstream: the data needs `reconcile verify`.
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
    def symbol(self) -> str:
        return "-/+"

    @property
    def subject(self) -> str:
        return f"table {self.set_name}/{self.table}"

    def describe(self) -> str:
        return f"table {self.table} in set {self.set_name}:{_spec(self.before)} ->{_spec(self.after)}"


class RemoveTable(ActionBase):
    kind: Literal["remove_table"] = "remove_table"
    set_name: str
    table: str

    @property
    def destructive(self) -> bool:
        return True

    @property
    def symbol(self) -> str:
        return "-"

    @property
    def subject(self) -> str:
        return f"table {self.set_name}/{self.table}"

    def describe(self) -> str:
        return f"table {self.table} in set {self.set_name}"


# -- subscriptions ---------------------------------------------------------------


class CreateSubscription(ActionBase):
    """Runs on the subscriber; the provider's existing filtered rows are copied."""

    kind: Literal["create_subscription"] = "create_subscription"
    subscription: Subscription
    # False when the subscriber's tables already hold rows: pglogical's COPY
    # would fail on keys already there and leave the subscription broken for
    # good; verify --repair brings the provider's older rows instead.
    copy_data: bool = True

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.INITIAL_COPY if self.copy_data else DataMovement.RESYNC_NEEDED

    @property
    def symbol(self) -> str:
        return "+"

    @property
    def subject(self) -> str:
        return f"subscription {self.subscription.name}"

    def describe(self) -> str:
        s = self.subscription
        text = (
            f"subscription {s.name} <- {s.provider_node} sets={{{','.join(s.replication_sets)}}}"
            f" forward_origins={{{','.join(s.forward_origins)}}}"
        )
        if not self.copy_data:
            text += " (no initial copy: the subscriber's tables hold rows; run verify --repair)"
        return text


class ReplaceSubscription(ActionBase):
    """Drop and re-create a subscription: pglogical cannot alter forward_origins or
    the provider node, and cannot revive a subscription whose slot is gone.

    `reason` says why when the attributes themselves are unchanged (the
    provider's slot was lost past max_slot_wal_keep_size, or dropped). The new
    subscription does NOT copy data: the subscriber already holds the
    provider's older rows and an initial COPY would fail on duplicate keys
    (REPLICATION-NOTES "WAL retention"); `reconcile verify --repair` fills
    what changed meanwhile, without truncating a table other providers feed.
    """

    kind: Literal["replace_subscription"] = "replace_subscription"
    before: Subscription
    after: Subscription
    reason: str | None = None

    @property
    def destructive(self) -> bool:
        return True

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.RESYNC_NEEDED

    @property
    def symbol(self) -> str:
        return "-/+"

    @property
    def subject(self) -> str:
        return f"subscription {self.after.name}"

    def describe(self) -> str:
        b, a = self.before, self.after
        changes = []
        if b.provider_node != a.provider_node:
            changes.append(f"provider {b.provider_node} -> {a.provider_node}")
        if b.forward_origins != a.forward_origins:
            changes.append(
                f"forward_origins {{{','.join(b.forward_origins)}}} -> {{{','.join(a.forward_origins)}}}"
            )
        if self.reason:
            changes.append(self.reason)
        return f"subscription {a.name}: {'; '.join(changes) or 'recreate'}"


class AlterSubscription(ActionBase):
    """Changes pglogical can make in place: sets, enabled, provider interface DSN."""

    kind: Literal["alter_subscription"] = "alter_subscription"
    before: Subscription
    after: Subscription
    # Native engine: SET PUBLICATION copies the tables of added publications.
    copy_data: bool = False

    @property
    def subject(self) -> str:
        return f"subscription {self.after.name}"

    @property
    def data_movement(self) -> DataMovement:
        # A set newly added to a pglogical subscription does not copy existing rows.
        added = set(self.after.replication_sets) - set(self.before.replication_sets)
        if not added:
            return DataMovement.NONE
        return DataMovement.INITIAL_COPY if self.copy_data else DataMovement.RESYNC_NEEDED

    def describe(self) -> str:
        b, a = self.before, self.after
        changes = []
        added = sorted(set(a.replication_sets) - set(b.replication_sets))
        removed = sorted(set(b.replication_sets) - set(a.replication_sets))
        if added:
            changes.append(f"add sets {','.join(added)}")
        if removed:
            changes.append(f"remove sets {','.join(removed)}")
        if b.provider_dsn != a.provider_dsn:
            changes.append("provider dsn changes (new interface)")
        if b.enabled != a.enabled:
            changes.append("enable" if a.enabled else "disable")
        return f"subscription {a.name}: {'; '.join(changes)}"


class DropSubscription(ActionBase):
    kind: Literal["drop_subscription"] = "drop_subscription"
    name: str
    provider_node: str

    @property
    def destructive(self) -> bool:
        return True

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.SLOT_DROPPED

    @property
    def symbol(self) -> str:
        return "-"

    @property
    def subject(self) -> str:
        return f"subscription {self.name}"

    def describe(self) -> str:
        return f"subscription {self.name} <- {self.provider_node}"


class DropSlot(ActionBase):
    """A pglogical slot on this provider that no declared subscription uses: it keeps WAL forever."""

    kind: Literal["drop_slot"] = "drop_slot"
    slot: str

    @property
    def destructive(self) -> bool:
        return True

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.SLOT_DROPPED

    @property
    def symbol(self) -> str:
        return "-"

    @property
    def subject(self) -> str:
        return f"slot {self.slot}"

    def describe(self) -> str:
        return f"orphaned replication slot {self.slot}"


# -- native engine -----------------------------------------------------------------


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


class SwitchSubscription(ActionBase):
    """Engine switch on one edge: hand a pglogical subscription over to a native one.

    The native subscription is created without copying (`copy_data = false`)
    and starts exactly where the pglogical one stopped (its replication
    origin is advanced to the pglogical origin's position), so no change is
    lost or applied twice; then the pglogical subscription is dropped.
    """

    kind: Literal["switch_subscription"] = "switch_subscription"
    before: Subscription
    after: Subscription

    @property
    def destructive(self) -> bool:
        return True  # the pglogical subscription goes

    @property
    def symbol(self) -> str:
        return "-/+"

    @property
    def subject(self) -> str:
        return f"subscription {self.after.name}"

    def describe(self) -> str:
        return (
            f"subscription {self.after.name} <- {self.after.provider_node}: pglogical -> native"
            f" publications={{{','.join(self.after.replication_sets)}}} (copy_data = false, no row copied)"
        )


class RefreshSubscription(ActionBase):
    """Native engine: a provider's publication gained tables; the subscriber copies their rows.

    ALTER SUBSCRIPTION ... REFRESH PUBLICATION (copy_data = true) starts
    applying the new tables and copies their existing filtered rows.
    """

    kind: Literal["refresh_subscription"] = "refresh_subscription"
    name: str
    provider_node: str

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.INITIAL_COPY

    @property
    def subject(self) -> str:
        return f"subscription {self.name}"

    def describe(self) -> str:
        return f"subscription {self.name} <- {self.provider_node}: refresh publication (copy new tables)"


Action = Annotated[
    SetWalKeepSize
    | CreateNode
    | ChangeNodeDsn
    | DropNode
    | CreateSet
    | AlterSet
    | DropSet
    | AddTable
    | ReplaceTable
    | RemoveTable
    | CreateSubscription
    | ReplaceSubscription
    | AlterSubscription
    | DropSubscription
    | DropSlot
    | SetReplicaIdentity
    | SwitchSubscription
    | RefreshSubscription,
    Field(discriminator="kind"),
]


def _flags(s: ReplicationSet) -> str:
    return ",".join(s.operations()) or "nothing"


def _spec(t: SetTable) -> str:
    parts = []
    if t.row_filter is not None:
        parts.append(f" filter={t.row_filter}")
    if t.columns is not None:
        parts.append(f" columns=[{','.join(t.columns)}]")
    return "".join(parts) or " (all rows, all columns)"
