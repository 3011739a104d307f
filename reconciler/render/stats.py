"""`plan --stats`: connections, round trips and seconds each node's inspection took."""

from __future__ import annotations

from reconciler.inspect import InspectResult


def stats_rows(inspection: InspectResult) -> list[dict[str, object]]:
    """One row per node read, sorted by node (the JSON form, added under "stats")."""
    return [
        {
            "node": name,
            "connections": f.stats.connections,
            "round_trips": f.stats.round_trips,
            "seconds": round(f.stats.seconds, 4),
        }
        for name, f in sorted(inspection.facts.items())
    ]


def render_stats_text(inspection: InspectResult) -> str:
    rows = stats_rows(inspection)
    lines = ["", "Inspection (per node): connections, round trips, seconds"]
    for row in rows:
        lines.append(f"  {row['node']}: {row['connections']} / {row['round_trips']} / {row['seconds']}")
    total = sum(float(str(r["seconds"])) for r in rows)
    lines.append(f"  {len(rows)} nodes read; {total:.3f} s summed over nodes")
    return "\n".join(lines) + "\n"
