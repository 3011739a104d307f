"""The one rule for which declared edge a replication slot serves; a slot that serves none is an orphan.

Inspection (plan's orphaned-slot drops) and status (slots under their edge)
both ask it, so a slot is never an orphan to one and in use to the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

# A pglogical table sync in progress holds a temporary '<slot>_%08x' slot
# (pglogical_sync.c): it serves the edge of <slot>.
_PGLOGICAL_SYNC_SUFFIX = re.compile(r"[0-9a-f]{8}")
# A native table-sync slot (pg_<subid>_sync_<relid>_<sysid>, PostgreSQL's
# tablesync.c) lives only while a subscriber copies a table: never an orphan,
# and not an edge's slot either.
_NATIVE_SYNC = re.compile(r"pg_[0-9]+_sync_[0-9]+_[0-9]+")


def is_native_table_sync(slot: str) -> bool:
    """A slot PostgreSQL holds for one table's initial copy of a native subscription."""
    return _NATIVE_SYNC.fullmatch(slot) is not None


def serves(slot: str, expected: Mapping[str, str]) -> str | None:
    """The subscription `slot` serves, given {edge's slot name: subscription}; None when none.

    An edge's own slot, or a pglogical table sync of it.
    """
    if slot in expected:
        return expected[slot]
    base, _, suffix = slot.rpartition("_")
    if base in expected and _PGLOGICAL_SYNC_SUFFIX.fullmatch(suffix) is not None:
        return expected[base]
    return None


def orphans(slots: Iterable[str], expected: Mapping[str, str]) -> list[str]:
    """The slots (sorted) that serve no edge and are no table sync: nothing will ever consume them."""
    return sorted(s for s in slots if serves(s, expected) is None and not is_native_table_sync(s))


def slot_name_params(provided: Sequence[Mapping[str, str]]) -> dict[str, list[str]]:
    """Parameters of pglogical/slot_names.sql for the edges a node provides (see request.expected_slots)."""
    return {
        "slot_db": [e["db"] for e in provided],
        "slot_provider": [e["provider"] for e in provided],
        "slot_subscription": [e["subscription"] for e in provided],
    }
