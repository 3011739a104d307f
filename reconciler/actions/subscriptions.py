"""Actions on subscriptions and on the provider slots they hold."""

from __future__ import annotations

from typing import Literal

from reconciler.actions.base import ActionBase, ChangeKind, DataMovement
from reconciler.model import Subscription


class CreateSubscription(ActionBase):
    """Runs on the subscriber; the provider's existing filtered rows are copied."""

    kind: Literal["create_subscription"] = "create_subscription"
    subscription: Subscription
    # False when the subscriber's tables already hold rows: pglogical's COPY
    # would fail on keys already there and leave the subscription broken for
    # good; verify --repair brings the provider's older rows instead.
    copy_data: bool = True

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.CREATE

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.INITIAL_COPY if self.copy_data else DataMovement.RESYNC_NEEDED

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
            text += " (no initial copy: the subscriber's tables hold rows; apply copies its rows by key)"
        return text


class ReplaceSubscription(ActionBase):
    """Drop and re-create a subscription: pglogical cannot alter forward_origins or
    the provider node, and cannot revive a subscription whose slot is gone.

    Destructive: the old slot's WAL position goes, so what it had not yet
    delivered is lost to this subscriber. `reason` says why when the
    attributes themselves are unchanged (the provider's slot was lost past
    max_slot_wal_keep_size, or dropped). The new subscription does NOT copy
    data: the subscriber already holds the provider's older rows and an
    initial COPY would fail on duplicate keys (REPLICATION-NOTES "WAL
    retention"); `reconcile verify --repair` fills what changed meanwhile,
    without truncating a table other providers feed.
    """

    kind: Literal["replace_subscription"] = "replace_subscription"
    before: Subscription
    after: Subscription
    reason: str | None = None

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.REPLACE

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.RESYNC_NEEDED

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
    """Destructive: the provider's slot goes, and with it the subscriber's WAL position."""

    kind: Literal["drop_subscription"] = "drop_subscription"
    name: str
    provider_node: str

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.DESTROY

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.SLOT_DROPPED

    @property
    def subject(self) -> str:
        return f"subscription {self.name}"

    def describe(self) -> str:
        return f"subscription {self.name} <- {self.provider_node}"


class DropSlot(ActionBase):
    """A slot on this provider that no subscription uses: it keeps WAL forever.

    Destructive: its WAL position is released for good.
    """

    kind: Literal["drop_slot"] = "drop_slot"
    slot: str

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.DESTROY

    @property
    def data_movement(self) -> DataMovement:
        return DataMovement.SLOT_DROPPED

    @property
    def subject(self) -> str:
        return f"slot {self.slot}"

    def describe(self) -> str:
        return f"orphaned replication slot {self.slot}"


class SwitchSubscription(ActionBase):
    """Engine switch on one edge: hand a pglogical subscription over to a native one.

    The native subscription is created without copying (`copy_data = false`)
    and starts exactly where the pglogical one stopped (its replication
    origin is advanced to the pglogical origin's position), so no change is
    lost or applied twice; then the pglogical subscription is dropped.
    Destructive all the same: the pglogical subscription and its slot go.
    """

    kind: Literal["switch_subscription"] = "switch_subscription"
    before: Subscription
    after: Subscription
    # Tiers above this node: subscribers switch before their providers
    # (engines/native_switch.py, _create_disabled, says why).
    step: int = 0

    @property
    def rank(self) -> tuple[int, ...]:
        return (self.step,)

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.REPLACE

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


class RestartSubscription(ActionBase):
    """A subscription that is down while both ends answer and its cause is gone: start its worker now.

    pglogical starts a failed apply worker again only when its manager wakes,
    every 180 s (REPLICATION-NOTES "Living networks"); disabling and enabling
    the subscription wakes it at once. Native: ALTER SUBSCRIPTION DISABLE,
    ENABLE. Nothing is lost: the worker resumes from its replication origin.
    `reason` says what the plan saw (how long it has been down, the last error).
    """

    kind: Literal["restart_subscription"] = "restart_subscription"
    name: str
    provider_node: str
    reason: str = ""

    @property
    def subject(self) -> str:
        return f"subscription {self.name}"

    def describe(self) -> str:
        return f"subscription {self.name}: restart" + (f" ({self.reason})" if self.reason else "")
