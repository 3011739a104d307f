"""The status page `reconcile serve` answers on /: one self-contained HTML document per reading.

Server-rendered, nothing fetched from anywhere (no script, no font, no
stylesheet link; the Content-Security-Policy says so too), refreshed by a meta
refresh. Everything that comes from the desired state or a server (node names,
URLs, reasons, error texts) is treated as hostile: secrets a quoted DSN could
carry are removed first, then the text is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from reconciler.health.judge import format_seconds
from reconciler.health.report import Finding, HealthReport, Level
from reconciler.model import DesiredState, format_bytes
from reconciler.render.graph import COLOURS
from reconciler.render.topology_svg import render_topology_svg
from reconciler.secrets import redact_text

# No script, no frame, no request anywhere: the page is inert even if an
# escaping slip ever let markup through.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:"

STYLE = """
body { font-family: sans-serif; margin: 1em 2em; color: #212121; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #bdbdbd; padding: 3px 8px; text-align: left; vertical-align: top; }
th, td { font-size: 13px; }
th { background: #eeeeee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.topology { overflow-x: auto; border: 1px solid #e0e0e0; margin-bottom: 1.5em; }
.failure { background: #ffcdd2; border: 2px solid #c62828; padding: 0.5em 1em; }
ul.findings { margin: 0; padding-left: 1.2em; }
""" + "".join(
    f".level-{name} {{ background: {fill}; color: #000; border-left: 4px solid {stroke}; }}\n"
    for name, (fill, stroke) in COLOURS.items()
)


def _text(value: object) -> str:
    """Untrusted text as HTML: secrets removed, then escaped."""
    return escape(redact_text("" if value is None else str(value)))


def _bytes(value: int | None) -> str:
    return "?" if value is None else format_bytes(value)


def _seconds(value: float | None) -> str:
    return "?" if value is None else format_seconds(value)


def _level(level: Level | str) -> str:
    """A cell showing a level in its colour."""
    name = level.value if isinstance(level, Level) else level
    return f'<td class="level-{escape(name)}">{escape(name.upper())}</td>'


def _findings(findings: tuple[Finding, ...]) -> str:
    if not findings:
        return "<td></td>"
    items = "".join(f"<li>{escape(f.level.value.upper())}: {_text(f.message)}</li>" for f in findings)
    return f'<td><ul class="findings">{items}</ul></td>'


def _table(table_id: str, title: str, headers: Sequence[str], rows: list[str]) -> str:
    """A titled table; `rows` are finished <tr> elements."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "\n".join(rows) if rows else f'<tr><td colspan="{len(headers)}">(none)</td></tr>'
    return (
        f'<h2>{escape(title)}</h2>\n<table id="{table_id}">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody></table>"
    )


def _row(key: str, cells: str) -> str:
    return f'<tr data-key="{_text(key)}">{cells}</tr>'


def _nodes(report: HealthReport) -> str:
    rows = []
    for n in report.nodes:
        if n.reachable:
            server = (n.server_version or "?").split(" ")[0]
            versions = f"PostgreSQL {server}, pglogical {n.pglogical_version or '-'}"
        else:
            versions = f"unreachable: {n.reason or '?'}"
        applied = "never"
        if n.last_apply is not None:
            a = n.last_apply
            applied = f"{a.applied_at:%Y-%m-%d %H:%M:%S%z} by {a.os_user} ({a.result})"
        drift = "" if n.drift is None else str(n.drift)
        rows.append(
            _row(
                n.node,
                f"<td>{_text(n.node)}</td><td>{_text(n.level_name)}</td>{_level(n.level)}"
                f"<td>{_text(versions)}</td><td>{_text(applied)}</td><td class=\"num\">{drift}</td>"
                f"{_findings(n.findings)}",
            )
        )
    headers = ("node", "level", "health", "server", "last apply", "drift", "findings")
    return _table("nodes", "Nodes", headers, rows)


def _edges(report: HealthReport) -> str:
    rows = []
    for e in report.edges:
        active = "" if e.slot_active is None else ("active" if e.slot_active else "inactive")
        cause = "" if e.cause is None else f"{e.cause}: {e.reason or ''}"
        rows.append(
            _row(
                f"{e.subscriber}<-{e.provider}",
                f"<td>{_text(e.subscriber)}</td><td>{_text(e.provider)}</td>{_level(e.level)}"
                f"<td>{_text(e.status)}</td><td class=\"num\">{_bytes(e.lag_bytes)}</td>"
                f'<td class="num">{_seconds(e.lag_seconds)}</td><td>{_text(e.slot)} {active}</td>'
                f"<td>{_text(cause)}</td><td>{_text(e.remedy)}</td>{_findings(e.findings)}",
            )
        )
    headers = (
        "subscriber", "provider", "health", "status", "lag", "lag (time)", "slot", "cause", "remedy",
        "findings",
    )  # fmt: skip
    return _table("edges", "Edges (subscriber <- provider)", headers, rows)


def _slots(report: HealthReport) -> str:
    rows = []
    for s in report.slots:
        owner = "orphan" if s.orphan else (s.subscription or "")
        rows.append(
            _row(
                f"{s.node}/{s.slot}",
                f"<td>{_text(s.node)}</td><td>{_text(s.slot)}</td>{_level(s.level)}<td>{_text(owner)}</td>"
                f'<td class="num">{_bytes(s.retained_bytes)}</td>'
                f'<td class="num">{_bytes(s.safe_wal_size)}</td>'
                f"<td>{_text(s.wal_status or '?')}</td><td>{'active' if s.active else 'inactive'}</td>"
                f"{_findings(s.findings)}",
            )
        )
    headers = ("provider", "slot", "health", "for", "retains", "safe WAL size", "wal_status", "", "findings")
    return _table("slots", "Slots (per provider)", headers, rows)


def _apps(report: HealthReport) -> str:
    rows = []
    for a in report.apps:
        answer = "no HTTP answer" if a.http_status is None else f"HTTP {a.http_status}"
        rows.append(
            _row(
                a.node,
                # The URL is shown as text, never a link: it is the merge request author's to choose.
                f"<td>{_text(a.node)}</td>{_level(a.level)}<td>{_text(a.url)}</td>"
                f"<td>{'up' if a.up else 'DOWN'}</td><td>{_text(answer)}</td>"
                f'<td class="num">{a.seconds * 1000:.0f} ms</td>{_findings(a.findings)}',
            )
        )
    headers = ("node", "health", "app_url", "state", "answer", "latency", "findings")
    return _table("apps", "Applications (app_url)", headers, rows)


def _freshness(report: HealthReport) -> str:
    rows = []
    for f in report.freshness:
        # As status text says it: an observer not read has no age and no finding of its own here.
        age = "not read" if f.seconds is None and not f.findings else _seconds(f.seconds)
        rows.append(
            _row(
                f"{f.source}@{f.observer}",
                f"<td>{_text(f.source)} as seen at {_text(f.observer)}: {escape(age)}</td>{_level(f.level)}"
                f"{_findings(f.findings)}",
            )
        )
    headers = ("leaf as seen at the node above it", "health", "findings")
    return _table("freshness", "Freshness (heartbeat, newest beat of each leaf)", headers, rows)


def render_status_page(
    state: DesiredState | None,
    report: HealthReport | None,
    *,
    timestamp: float,
    seconds: float,
    refresh_seconds: int,
    failure: str | None = None,
) -> str:
    """The page for one reading; `failure` (a fixed sentence, not server text) when it failed."""
    read_at = datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    level = report.level.value if report is not None and failure is None else Level.CRIT.value
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        f"<title>reconcile status: {level.upper()}</title>",
        f"<style>{STYLE}</style></head><body>",
        f'<h1>Replication status: <span id="level" class="level-{level}">{level.upper()}</span></h1>',
        f'<p>Read at <time id="read-at" datetime="{datetime.fromtimestamp(timestamp, tz=UTC).isoformat()}">'
        f"{read_at}</time> (the reading took {seconds:.1f} s); this page refreshes every "
        f"{int(refresh_seconds)} s.</p>",
    ]
    if failure is not None:
        parts.append(f'<p class="failure" id="failure">The last reading failed: {escape(failure)}.</p>')
    if report is not None and failure is None:
        counts = report.counts()
        parts.append(
            f'<p id="summary">{counts[Level.CRIT]} crit, {counts[Level.WARN]} warn, {counts[Level.OK]} ok, '
            f"{len(report.unreachable)} unreachable.</p>"
        )
        if state is not None:
            parts.append('<h2>Topology</h2>\n<div class="topology">')
            parts.append(render_topology_svg(state, report))
            parts.append("</div>")
        parts += [_nodes(report), _edges(report), _slots(report)]
        if report.apps:
            parts.append(_apps(report))
        if report.freshness:
            parts.append(_freshness(report))
        t = report.thresholds
        freshness = f", freshness {escape(format_seconds(t.max_freshness_seconds))}" if t.heartbeat else ""
        parts.append(
            f"<p>Thresholds: lag {escape(format_seconds(t.max_lag_seconds))} / "
            f"{escape(format_bytes(t.max_lag_bytes))}, "
            f"retained WAL {escape(format_bytes(t.max_retained_wal))}{freshness}; "
            f"WARN at {t.warn_fraction:g} of each.</p>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
