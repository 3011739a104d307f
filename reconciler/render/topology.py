"""The derived topology as text (`reconcile topology`, `validate --topology`): levels, nodes, edges."""

from __future__ import annotations

from reconciler.model import DesiredState
from reconciler.topology import edges


def render_topology(state: DesiredState) -> str:
    """The derived topology for people: levels top first, nodes, each edge's subscription."""
    lines = [f"engine: {state.engine}", f"levels (leaf first): {', '.join(state.levels)}", ""]
    by_level: dict[str, list[str]] = {level: [] for level in state.levels}
    for name, decl in sorted(state.nodes.items()):
        by_level[decl.level].append(name)
    for level in reversed(state.levels):
        lines.append(f"{level}: {', '.join(by_level[level]) or '-'}")
    lines.append("")
    lines.append("edges (subscriber <- provider):")
    for e in edges(state):
        fwd = "{" + ",".join(e.forward_origins) + "}"
        lines.append(
            f"  {e.subscriber} <- {e.provider}  subscription={e.subscription}"
            f"  sets={','.join(e.sets)}  forward_origins={fwd}"
        )
    return "\n".join(lines) + "\n"
