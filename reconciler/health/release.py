"""Pure: how far the desired state's schema migrations reached, per node and as one summary line."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.health.readings import NodeReading
from reconciler.model import DesiredState


def release_line(state: DesiredState, readings: Mapping[str, NodeReading]) -> str | None:
    """'release 0003: 87 of 111 nodes; the rest wait on region_north (unreachable)', None without migrations.

    A node behind the release waits on the highest node above it that does not
    answer, or is behind itself; otherwise on its own migration.
    """
    if not state.migrations:
        return None
    release = state.migrations[-1].id

    def level(node: str) -> int | None:
        reading = readings.get(node)
        return reading.schema_migration if reading is not None and reading.reachable else None

    done = [n for n in state.nodes if (level(n) or 0) >= release]
    line = f"release {release:04d}: {len(done)} of {len(state.nodes)} nodes"
    causes: dict[str, int] = {}
    for node in sorted(set(state.nodes) - set(done)):
        cause = node
        above = state.nodes[node].upstream
        seen: set[str] = set()
        while above is not None and above in state.nodes and above not in seen:
            seen.add(above)
            if (level(above) or 0) < release:
                cause = above
            above = state.nodes[above].upstream
        causes[cause] = causes.get(cause, 0) + 1
    if causes:
        parts = []
        for cause, count in sorted(causes.items(), key=lambda item: (-item[1], item[0])):
            why = "unreachable" if level(cause) is None else f"at {level(cause) or 0:04d}"
            parts.append(f"{cause} ({why}, {count} node{'s' if count != 1 else ''})")
        line += "; the rest wait on " + ", ".join(parts)
    return line
