"""The topology as an inline SVG drawing, coloured by live health as `reconcile graph` colours it.

Laid out by tier: the top level in the first row, leaves in the last, each
node above the middle of its children, arrows following the data (provider
-> subscriber, so they point up). Pure: a string from a state and a report.
Every text from the desired state or the servers is redacted and escaped.
"""

from __future__ import annotations

from html import escape

from reconciler.health.report import HealthReport
from reconciler.model import DesiredState
from reconciler.render.graph import COLOURS, edge_label, node_classes, node_label
from reconciler.secrets import redact_text
from reconciler.topology import edges

ROW_HEIGHT = 130
BOX_HEIGHT = 44
MARGIN = 20
CHAR_WIDTH = 7.5  # about one character of the 12 px sans-serif used for names


def _text(value: str) -> str:
    """Untrusted text (names, findings quoting a server) as SVG: secrets removed, then escaped."""
    return escape(redact_text(value))


def _children(state: DesiredState) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {name: [] for name in state.nodes}
    for name, decl in sorted(state.nodes.items()):
        if decl.upstream is not None and decl.upstream in result:
            result[decl.upstream].append(name)
    return result


def columns(state: DesiredState) -> dict[str, float]:
    """Each node's column: leaves take the next free column, a parent sits at its children's middle."""
    children = _children(state)
    placed: dict[str, float] = {}
    free = [0.0]

    def place(name: str) -> float:
        if name in placed:  # a loop cannot pass load.py; this keeps the walk finite regardless
            return placed[name]
        placed[name] = free[0]
        kids = children[name]
        if not kids:
            free[0] += 1
            return placed[name]
        spots = [place(kid) for kid in kids]
        placed[name] = (min(spots) + max(spots)) / 2
        return placed[name]

    roots = sorted(n for n, d in state.nodes.items() if d.upstream is None or d.upstream not in state.nodes)
    for root in roots:
        place(root)
    for name in sorted(state.nodes):  # anything a root does not reach (never, once loaded)
        place(name)
    return placed


def _row(state: DesiredState, name: str) -> int:
    """0 for the top level; a level the state does not list goes to the bottom row."""
    level = state.nodes[name].level
    index = state.levels.index(level) if level in state.levels else -1
    return len(state.levels) - 1 - index


def _arrow_colours() -> dict[str, str]:
    """Line colour per edge level ("unknown": no reading of it)."""
    return {name: stroke for name, (_, stroke) in COLOURS.items() if name != "unreachable"} | {
        "unknown": "#9e9e9e"
    }


def render_topology_svg(state: DesiredState, report: HealthReport | None) -> str:
    classes = node_classes(report) if report is not None else {}
    live = {(e.subscriber, e.provider): e for e in report.edges} if report is not None else {}
    apps = {a.node: a for a in report.apps} if report is not None else {}
    findings = {n.node: n for n in report.nodes} if report is not None else {}
    cols = columns(state)
    longest = max((len(n) for n in state.nodes), default=0)
    box_width = max(160.0, longest * CHAR_WIDTH + 24)
    cell = box_width + 30
    rows = len(state.levels)
    width = MARGIN * 2 + cell * (max(cols.values(), default=0) + 1)
    height = MARGIN * 2 + ROW_HEIGHT * (rows - 1) + BOX_HEIGHT

    def centre(name: str) -> tuple[float, float]:
        return MARGIN + cell * cols[name] + cell / 2, MARGIN + ROW_HEIGHT * _row(state, name)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="topology-svg" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        'aria-label="replication topology">',
        # One arrow head per colour: SVG markers do not take the line's colour everywhere.
        "<defs>"
        + "".join(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
            f'markerHeight="8" orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>'
            for name, colour in _arrow_colours().items()
        )
        + "</defs>",
    ]
    for edge in edges(state):
        if edge.provider not in cols or edge.subscriber not in cols:
            continue
        health = live.get((edge.subscriber, edge.provider))
        level = health.level.value if health is not None else "unknown"
        stroke = _arrow_colours()[level]
        label = edge_label(health) if health is not None else edge.subscription
        x1, y1 = centre(edge.provider)  # the provider's top edge
        x2, y2 = centre(edge.subscriber)
        y2 += BOX_HEIGHT  # the subscriber's bottom edge
        # The label sits near the provider, where siblings' arrows are a column apart.
        lx, ly = x1 + (x2 - x1) * 0.25, y1 + (y2 - y1) * 0.25
        parts.append(
            f'<g class="edge" data-subscriber="{_text(edge.subscriber)}" '
            f'data-provider="{_text(edge.provider)}" data-health="{level}">'
            f"<title>{_text(edge.subscriber)} &lt;- {_text(edge.provider)}: {_text(label)}</title>"
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
            f'stroke-width="2" marker-end="url(#arrow-{level})"/>'
            f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="10" text-anchor="middle" '
            # A white halo keeps the label readable where it crosses the line.
            f'fill="#333" stroke="#fff" stroke-width="3" paint-order="stroke">{_text(label)}</text></g>'
        )
    for name in sorted(state.nodes):
        cls = classes.get(name)
        fill, stroke = COLOURS[cls] if cls is not None else ("#ffffff", "#616161")
        dash = ' stroke-dasharray="5 5"' if cls == "unreachable" else ""
        first, second = node_label(state, name, cls, apps.get(name))
        x, y = centre(name)
        node = findings.get(name)
        why = "; ".join(f.message for f in node.findings) if node is not None else ""
        tip = f"{first}: {second}" + (f"; {why}" if why else "")
        parts.append(
            f'<g class="node" id="node-{_text(name)}" data-node="{_text(name)}" '
            f'data-health="{_text(cls or "unknown")}"><title>{_text(tip)}</title>'
            f'<rect x="{x - box_width / 2:.1f}" y="{y:.1f}" width="{box_width:.1f}" '
            f'height="{BOX_HEIGHT}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="2"{dash}/>'
            f'<text x="{x:.1f}" y="{y + 18:.1f}" font-size="12" font-weight="bold" '
            f'text-anchor="middle">{_text(first)}</text>'
            f'<text x="{x:.1f}" y="{y + 34:.1f}" font-size="10" text-anchor="middle">'
            f"{_text(second)}</text></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts)
