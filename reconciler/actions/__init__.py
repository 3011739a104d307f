"""Typed, frozen actions: what the diff yields, the plan orders, and engines execute.

Each action names the node it runs on and carries its own flags: its change
kind (`change`, from which the plan's symbol and summary come), whether it
loses data or a WAL position (`destructive`) and what it does to data
(`data_movement`). Nothing anywhere decides safety by reading SQL text.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from reconciler.actions.base import ActionBase, ChangeKind, DataMovement
from reconciler.actions.heartbeat import CreateHeartbeat
from reconciler.actions.migrations import RunMigration
from reconciler.actions.nodes import ChangeNodeDsn, CreateNode, DropNode, SetWalKeepSize
from reconciler.actions.sets import (
    AddTable,
    AlterSet,
    CreateSet,
    DropSet,
    RemoveTable,
    ReplaceTable,
    SetReplicaIdentity,
)
from reconciler.actions.subscriptions import (
    AlterSubscription,
    CreateSubscription,
    DropSlot,
    DropSubscription,
    RefreshSubscription,
    ReplaceSubscription,
    RestartSubscription,
    SwitchSubscription,
)

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
    | RefreshSubscription
    | RestartSubscription
    | RunMigration
    | CreateHeartbeat,
    Field(discriminator="kind"),
]

__all__ = [
    "Action",
    "ActionBase",
    "AddTable",
    "AlterSet",
    "AlterSubscription",
    "ChangeKind",
    "ChangeNodeDsn",
    "CreateHeartbeat",
    "CreateNode",
    "CreateSet",
    "CreateSubscription",
    "DataMovement",
    "DropNode",
    "DropSet",
    "DropSlot",
    "DropSubscription",
    "RefreshSubscription",
    "RemoveTable",
    "ReplaceSubscription",
    "ReplaceTable",
    "RestartSubscription",
    "RunMigration",
    "SetReplicaIdentity",
    "SetWalKeepSize",
    "SwitchSubscription",
]
