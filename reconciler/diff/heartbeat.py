"""Pure: the heartbeat table (monitoring: heartbeat) on every read node that lacks it."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.actions import CreateHeartbeat
from reconciler.diff.desired import Desired
from reconciler.heartbeat import HEARTBEAT_TABLE
from reconciler.live import LiveNode


def heartbeat_tables(desired: Desired, live: Mapping[str, LiveNode]) -> list[CreateHeartbeat]:
    """A creation on every read node whose database lacks reconcile.heartbeat, when the network asks.

    Inspection reads the table like a declared one: it is in `columns` when
    it exists. Turned off again, the table stays (the tool's own, harmless):
    only its set memberships go, as destructive removals.
    """
    if not desired.heartbeat:
        return []
    children: dict[str, list[str]] = {}
    for name, node in sorted(desired.nodes.items()):
        if node.upstream is not None:
            children.setdefault(node.upstream, []).append(name)
    return [
        CreateHeartbeat(node=name, providers=tuple(children.get(name, ())))
        for name in sorted(live)
        if name in desired.nodes and HEARTBEAT_TABLE not in live[name].columns
    ]
