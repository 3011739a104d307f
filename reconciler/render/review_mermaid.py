"""Mermaid flowchart of the head topology with added, removed and moved parts marked."""

from __future__ import annotations

from reconciler.model import DesiredState
from reconciler.review.change import Change
from reconciler.topology import edges

# GitHub and GitLab refuse diagrams past ~50,000 characters or 500 edges;
# past this many nodes only the changed part (and its neighbours) is drawn.
MAX_NODES = 150

_CLASSES = (
    "classDef added fill:#dafbe1,stroke:#1a7f37,stroke-width:3px",
    "classDef removed fill:#ffebe9,stroke:#cf222e,stroke-width:2px,stroke-dasharray:5 5",
    "classDef moved fill:#fff8c5,stroke:#9a6700,stroke-width:3px",
    "classDef changed fill:#ddf4ff,stroke:#0969da,stroke-width:2px",
)
_LINK_STYLE = {
    "new": "stroke:#1a7f37,stroke-width:3px",
    "removed": "stroke:#cf222e,stroke-width:2px,stroke-dasharray:5 5",
    "re-created": "stroke:#9a6700,stroke-width:3px",
}

LEGEND = (
    "Rows flow up the arrows. Green: added; red, dashed: removed; amber: moved to another upstream "
    "or link re-created; blue: settings changed."
)


def _id(node: str) -> str:
    # Prefixed: a node called `end` or `graph` would otherwise be a Mermaid keyword.
    return f"n_{node}"


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def render_mermaid(change: Change, base: DesiredState | None, head: DesiredState) -> tuple[str, int]:
    """The diagram text (without the code fence) and how many unchanged nodes were left out."""
    old_nodes = base.nodes if base is not None else {}
    removed = {n.name for n in change.nodes_removed}
    added = {n.name for n in change.nodes_added}
    moved = {m.name for m in change.nodes_moved}
    edited = {f.subject for f in change.node_fields}
    old_edges = {(e.provider, e.subscriber) for e in edges(base)} if base is not None else set()
    new_edges = {(e.provider, e.subscriber): e for e in edges(head)}
    recreated = {(lc.provider, lc.subscriber) for lc in change.links_changed}

    levels = list(head.levels) + [lv for lv in change.levels_removed if lv not in head.levels]
    level_of = {n: d.level for n, d in old_nodes.items()} | {n: d.level for n, d in head.nodes.items()}
    every = sorted(set(head.nodes) | removed)
    shown = set(every)
    left_out = 0
    if len(every) > MAX_NODES:
        focus = added | removed | moved | edited
        for p, s in (set(new_edges) ^ old_edges) | recreated:
            focus |= {p, s}
        for name in list(focus):
            for decl in (old_nodes.get(name), head.nodes.get(name)):
                if decl is not None and decl.upstream is not None:
                    focus.add(decl.upstream)
        shown = focus
        left_out = len(every) - len(shown)

    lines = ["flowchart BT"]
    for index, level in enumerate(levels):
        members = [n for n in every if n in shown and level_of.get(n) == level]
        if not members:
            continue
        lines.append(f"  subgraph level_{index}[{_label(level)}]")
        lines.extend(f"    {_id(n)}[{_label(n)}]" for n in members)
        lines.append("  end")

    links: list[tuple[str, str, str]] = []  # (provider, subscriber, marker)
    for provider, subscriber in sorted(set(new_edges) | old_edges):
        if provider not in shown or subscriber not in shown:
            continue
        if (provider, subscriber) not in new_edges:
            marker = "removed"
        elif (provider, subscriber) not in old_edges and base is not None:
            marker = "new"
        elif (provider, subscriber) in recreated:
            marker = "re-created"
        else:
            marker = ""
        links.append((provider, subscriber, marker))
    for provider, subscriber, marker in links:
        if marker == "removed":
            lines.append(f"  {_id(provider)} -.->|removed| {_id(subscriber)}")
        elif marker:
            lines.append(f"  {_id(provider)} ==>|{marker}| {_id(subscriber)}")
        else:
            lines.append(f"  {_id(provider)} --> {_id(subscriber)}")
    for index, (_p, _s, marker) in enumerate(links):
        if marker:
            lines.append(f"  linkStyle {index} {_LINK_STYLE[marker]}")

    lines.extend(f"  {c}" for c in _CLASSES)
    for cls, group in (
        ("added", added if base is not None else set()),
        ("removed", removed),
        ("moved", moved),
        ("changed", edited - moved - added - removed),
    ):
        names = sorted(n for n in group if n in shown)
        if names:
            lines.append(f"  class {','.join(_id(n) for n in names)} {cls}")
    return "\n".join(lines) + "\n", left_out
