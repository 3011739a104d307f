"""The topology as a Mermaid or Graphviz DOT graph, coloured by live health when a report is given.

Arrows follow the data: provider -> subscriber, so districts sit at the bottom
and the nation on top. A node's colour is the worst of its own health and of
the slots it holds; an unreachable node is grey and dashed, and says so.
"""

from __future__ import annotations

from reconciler.health.judge import format_seconds
from reconciler.health.report import AppHealth, EdgeHealth, HealthReport, Level, worst
from reconciler.model import DesiredState, format_bytes
from reconciler.topology import edges

# fill, stroke
COLOURS: dict[str, tuple[str, str]] = {
    Level.OK.value: ("#c8e6c9", "#2e7d32"),
    Level.WARN.value: ("#fff3c4", "#f9a825"),
    Level.CRIT.value: ("#ffcdd2", "#c62828"),
    "unreachable": ("#e0e0e0", "#616161"),
}


def node_classes(report: HealthReport) -> dict[str, str]:
    """ok | warn | crit | unreachable per node."""
    result: dict[str, str] = {}
    for n in report.nodes:
        if not n.reachable:
            result[n.node] = "unreachable"
            continue
        slots = [s.level for s in report.slots if s.node == n.node]
        apps = [a.level for a in report.apps if a.node == n.node]  # the site's web application
        result[n.node] = worst([n.level, *slots, *apps]).value
    return result


def edge_label(edge: EdgeHealth) -> str:
    lag_b = "?" if edge.lag_bytes is None else format_bytes(edge.lag_bytes)
    lag_s = "?" if edge.lag_seconds is None else format_seconds(edge.lag_seconds)
    cause = "" if edge.cause is None else f" ({edge.cause.replace('_', ' ')})"
    return f"{edge.status}{cause}, lag {lag_b} / {lag_s}"


def node_label(state: DesiredState, node: str, cls: str | None, app: AppHealth | None) -> tuple[str, str]:
    """(first line, second line) of a node's box."""
    second = state.nodes[node].level
    if cls == "unreachable":
        second += ", UNREACHABLE"
    elif cls is not None:
        second += f", {cls.upper()}"
    if app is not None:
        second += ", app up" if app.up else ", app DOWN"
    return node, second


def _apps(report: HealthReport | None) -> dict[str, AppHealth]:
    return {a.node: a for a in report.apps} if report is not None else {}


def render_mermaid(state: DesiredState, report: HealthReport | None = None) -> str:
    classes = node_classes(report) if report is not None else {}
    live = {(e.subscriber, e.provider): e for e in report.edges} if report is not None else {}
    apps = _apps(report)
    lines = ["flowchart BT"]
    for node in sorted(state.nodes):
        first, second = node_label(state, node, classes.get(node), apps.get(node))
        lines.append(f'    {node}["{first}<br/>{second}"]')
    styles: list[str] = []
    for index, edge in enumerate(edges(state)):
        health = live.get((edge.subscriber, edge.provider))
        label = edge_label(health) if health is not None else edge.subscription
        lines.append(f'    {edge.provider} -->|"{label}"| {edge.subscriber}')
        if health is not None:
            styles.append(f"    linkStyle {index} stroke:{COLOURS[health.level.value][1]},stroke-width:2px")
    if classes:
        for name, (fill, stroke) in COLOURS.items():
            dash = ",stroke-dasharray: 5 5" if name == "unreachable" else ""
            lines.append(f"    classDef {name} fill:{fill},stroke:{stroke}{dash}")
        for name in COLOURS:
            members = sorted(n for n, c in classes.items() if c == name)
            if members:
                lines.append(f"    class {','.join(members)} {name}")
    lines.extend(styles)
    return "\n".join(lines) + "\n"


DOT_NEWLINE = "\\n"  # DOT's line break inside a quoted label


def _dot_quote(text: str) -> str:
    # Names are [a-z0-9_] (load.py); only a quote could break out of the string.
    return '"' + text.replace('"', "'") + '"'


def render_dot(state: DesiredState, report: HealthReport | None = None) -> str:
    classes = node_classes(report) if report is not None else {}
    live = {(e.subscriber, e.provider): e for e in report.edges} if report is not None else {}
    lines = [
        "digraph reconcile {",
        "    rankdir=BT;",
        '    node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    apps = _apps(report)
    for node in sorted(state.nodes):
        first, second = node_label(state, node, classes.get(node), apps.get(node))
        attrs = [f"label={_dot_quote(first + DOT_NEWLINE + second)}"]
        cls = classes.get(node)
        if cls is not None:
            fill, stroke = COLOURS[cls]
            attrs += [f"fillcolor={_dot_quote(fill)}", f"color={_dot_quote(stroke)}"]
            if cls == "unreachable":
                attrs.append('style="rounded,filled,dashed"')
        lines.append(f"    {_dot_quote(node)} [{', '.join(attrs)}];")
    for edge in edges(state):
        health = live.get((edge.subscriber, edge.provider))
        label = edge_label(health) if health is not None else edge.subscription
        attrs = [f"label={_dot_quote(label)}"]
        if health is not None:
            attrs.append(f"color={_dot_quote(COLOURS[health.level.value][1])}")
        lines.append(
            f"    {_dot_quote(edge.provider)} -> {_dot_quote(edge.subscriber)} [{', '.join(attrs)}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"
