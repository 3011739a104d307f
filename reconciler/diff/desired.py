"""The desired side of the diff: each read node's normalised catalog and what the network declares of it."""

from __future__ import annotations

from pydantic import Field

from reconciler.model import Engine, Frozen, Migration, NodeCatalog


class DesiredNode(Frozen):
    # As inspection normalised it (row filters in the node's own normal form),
    # so that `desired == live` means in sync.
    catalog: NodeCatalog = Field(default_factory=NodeCatalog)
    upstream: str | None = None  # the node its rows flow to (its parent, which subscribes to it)
    max_slot_wal_keep_size: str | None = None  # None: not declared, left as it is


class Desired(Frozen):
    """Every declared node; those not read are diffed not at all, only their subscriptions count."""

    engine: Engine = Engine.PGLOGICAL
    nodes: dict[str, DesiredNode] = Field(default_factory=dict)
    # monitoring.restart_after_seconds: a link down this long is restarted (diff/restarts.py).
    restart_after_seconds: float = 30.0
    # The desired state's schema migrations, in id order (diff/migrations.py rolls them out).
    migrations: tuple[Migration, ...] = ()
    # monitoring.heartbeat: every node holds the tool's reconcile.heartbeat table.
    heartbeat: bool = False

    def above(self, node: str) -> list[str]:
        """The nodes above `node`, nearest first (bounded: the loader refuses cycles)."""
        found: list[str] = []
        current = self.nodes[node].upstream
        while current is not None and current in self.nodes and current not in found:
            found.append(current)
            current = self.nodes[current].upstream
        return found
