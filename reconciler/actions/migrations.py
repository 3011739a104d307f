"""The action that runs one schema migration of the desired state on one node."""

from __future__ import annotations

from typing import Literal

from reconciler.actions.base import ActionBase, ChangeKind
from reconciler.model import Migration


class RunMigration(ActionBase):
    """Run `migration` on the node, in one transaction, and record it in reconcile.schema_migrations.

    `after`: the nodes whose run of the same migration, in this plan, comes
    first: the tiers above for an additive migration (a node never sends a
    column its subscriber lacks), the tiers below for a leaves-first one.
    `providers` (leaves-first only): the nodes this one subscribes to, each
    with the slot there; each slot must have confirmed every change of the
    old shape before the migration runs here.
    `step`: the rollout position (0 at the tier that goes first).
    """

    kind: Literal["run_migration"] = "run_migration"
    migration: Migration
    after: tuple[str, ...] = ()
    providers: tuple[tuple[str, str], ...] = ()  # (provider node, slot of this node's subscription)
    step: int = 0

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.CREATE

    @property
    def rank(self) -> tuple[int, ...]:
        # Migrations in id order, each tier by tier: the plan's order is the rollout's.
        return (self.migration.id, self.step)

    @property
    def subject(self) -> str:
        return f"migration {self.migration.name}"

    def describe(self) -> str:
        order = "leaves first" if self.migration.leaves_first else "top down"
        return f"migration {self.migration.name} ({order}, step {self.step + 1})"
