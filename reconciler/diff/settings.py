"""Pure diff of server settings: a declared max_slot_wal_keep_size, once per server."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.actions import SetWalKeepSize
from reconciler.diff.desired import Desired
from reconciler.live import LiveNode
from reconciler.model import wal_keep_bytes


def server_settings(desired: Desired, live: Mapping[str, LiveNode]) -> list[SetWalKeepSize]:
    """Declared max_slot_wal_keep_size that differs from the live server, once per server.

    Nodes sharing a server (same system_identifier) share the setting; the
    loader makes them declare one value. The first node by name carries it.
    """
    actions: list[SetWalKeepSize] = []
    seen: set[str] = set()
    for name, node in sorted(live.items()):
        wanted = desired.nodes[name].max_slot_wal_keep_size if name in desired.nodes else None
        if wanted is None or node.system_identifier in seen:
            continue
        seen.add(node.system_identifier)
        if wal_keep_bytes(node.max_slot_wal_keep_size) != wal_keep_bytes(wanted):
            actions.append(SetWalKeepSize(node=name, before=node.max_slot_wal_keep_size, after=wanted))
    return actions
