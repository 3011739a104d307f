"""The action that creates the tool's heartbeat table on one node (monitoring: heartbeat)."""

from __future__ import annotations

from typing import Literal

from reconciler.actions.base import ActionBase, ChangeKind
from reconciler.heartbeat import HEARTBEAT_TABLE


class CreateHeartbeat(ActionBase):
    """Create reconcile.heartbeat on the node, before any set holds it or subscription copies it.

    `providers`: the nodes this one subscribes to by the topology (its
    children). A provider adding the table to a set its subscriber already
    uses queues a copy there, so that add waits for this creation on the
    subscriber (apply/graph.py).
    """

    kind: Literal["create_heartbeat"] = "create_heartbeat"
    providers: tuple[str, ...] = ()

    @property
    def change(self) -> ChangeKind:
        return ChangeKind.CREATE

    @property
    def subject(self) -> str:
        return f"table {HEARTBEAT_TABLE}"

    def describe(self) -> str:
        return f"table {HEARTBEAT_TABLE} (the tool's heartbeat: node, beat_at)"
