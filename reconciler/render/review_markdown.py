"""Markdown of a review, fit to post as a merge-request comment: under 60,000 characters, deterministic."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from reconciler.model import format_bytes
from reconciler.plan import Plan
from reconciler.render import summary_line
from reconciler.render.markup import cell
from reconciler.render.markup import code as q
from reconciler.render.plan_markdown import render_markdown
from reconciler.render.review_mermaid import LEGEND
from reconciler.render.review_sentences import flows
from reconciler.review.build import Live, Review
from reconciler.review.change import Change
from reconciler.review.risk import CopyEstimate, RiskKind
from reconciler.secrets import redact_text

# GitHub refuses comments over 65,536 characters and GitLab notes over 1,000,000;
# a margin under GitHub's limit leaves room for a bot's own header.
MAX_CHARS = 60_000

_RISK_ICON = {
    RiskKind.BLOCKING: ":no_entry:",
    RiskKind.MIGRATION: ":scroll:",
    RiskKind.DESTROYS: ":boom:",
    RiskKind.ORPHANED_SLOTS: ":warning:",
    RiskKind.NEEDS_VERIFY: ":mag:",
    RiskKind.DATA_MOVEMENT: ":truck:",
    RiskKind.BEHAVIOUR: ":warning:",
}


def _capped(rows: list[str], limit: int | None, columns: int, what: str) -> list[str]:
    if limit is None or len(rows) <= limit:
        return rows
    filler = " |" * (columns - 1)
    return rows[:limit] + [f"| *... and {len(rows) - limit} more {what}*{filler}"]


def _short(commit: str) -> str:
    return commit[:12]


def _header(review: Review) -> list[str]:
    b, h = review.base, review.head
    lines = [
        "## reconcile review",
        "",
        f"Desired state {q(review.directory)}: base {q(b.ref)} ({q(_short(b.commit))}) -> "
        f"head {q(h.ref)} ({q(_short(h.commit))}).",
        "",
    ]
    counts = Counter(r.kind for r in review.risks)
    if not review.head.valid:
        lines.append(
            f":no_entry: **Blocking: the head revision does not validate ({len(h.problems)} problem(s)).** "
            "`plan` and `apply` would refuse it; fix the files named below."
        )
    elif review.plan is not None and review.plan.blockers:
        lines.append(
            f":no_entry: **Blocking: the plan against the live network has {len(review.plan.blockers)} "
            "blocking error(s).** `apply` would refuse it."
        )
    elif review.risks:
        parts = ", ".join(f"{kind.value}: {counts[kind]}" for kind in RiskKind if counts[kind])
        lines.append(f":warning: **{len(review.risks)} risk(s) to review** ({parts}).")
    elif review.change is not None and review.change.empty:
        lines.append(":white_check_mark: **No change to the desired state.**")
    else:
        lines.append(":white_check_mark: **No risk found.**")
    lines += ["", _live_line(review)]
    return lines


def _live_line(review: Review) -> str:
    timeout = f"{review.timeout:g} s"
    new = _not_contacted(review)
    if review.live is Live.PLANNED:
        return ":electric_plug: Live network: every node answered; the plan of head is below." + new
    if review.live is Live.PARTIAL:
        return (
            f":electric_plug: Live network: {len(review.unreachable)} node(s) did not answer within "
            f"{timeout} ({', '.join(q(n) for n in sorted(review.unreachable))}); the plan below covers "
            "the others." + new
        )
    if review.live is Live.UNREACHABLE:
        return (
            f":electric_plug: **Live network unreachable**: no node answered within {timeout}, so the "
            "plan against live and the size of initial copies are not included. The semantic change, "
            "validation and risks above do not need the network." + new
        )
    if review.live is Live.OFFLINE:
        return ":electric_plug: Live network not consulted (`--offline`): no plan, no copy sizes."
    if review.live is Live.NOT_CONTACTED:
        if not review.base.exists:
            why = "the base revision has no desired state"
        elif not review.base.valid:
            why = "the base revision does not validate"
        else:
            why = "every node of head is new in this merge request"
        return (
            f":electric_plug: Live network not contacted: {why}, and the review connects only with the "
            "connection details of the base revision (merged), never with those a merge request brings: "
            "no plan, no copy sizes."
        )
    return ":electric_plug: Live network not consulted: the head revision does not validate."


def _not_contacted(review: Review) -> str:
    if not review.not_contacted:
        return ""
    names = ", ".join(q(n) for n in sorted(review.not_contacted))
    return (
        f" {len(review.not_contacted)} node(s) new in this merge request were not contacted ({names}): "
        "the review connects only with the base revision's connection details, and they have none there."
    )


def _validation(review: Review, limit: int | None) -> list[str]:
    h = review.head
    lines = ["", "### Validation of head", ""]
    if h.valid:
        lines.append(f":white_check_mark: Valid: {h.nodes} node(s), {h.links} replication link(s).")
        return lines
    lines.append(f":no_entry: {len(h.problems)} blocking problem(s):")
    lines.append("")
    rows = [f"- {q(f'{p.file}:{p.line}:{p.column}')}: {cell(p.message)}" for p in h.problems]
    if limit is not None and len(rows) > limit:
        rows = rows[:limit] + [f"- *... and {len(h.problems) - limit} more*"]
    return lines + rows


def _changes(review: Review, limit: int | None) -> list[str]:
    lines = ["", "### What changes", ""]
    if review.change is None and not review.head.valid:
        lines.append("Not computed: the head revision must validate before it can be compared with base.")
        return lines
    if review.change is None:
        base = review.base
        lines.append(
            f"The base revision does not validate ({len(base.problems)} problem(s)), so it cannot be "
            "compared with head; the head is validated and planned on its own."
        )
        return lines
    change = review.change
    if change.empty:
        lines.append("The desired state is the same at both revisions.")
        return lines
    sentences = [f"- {s}" for s in review.summary]
    if limit is not None and len(sentences) > limit:
        sentences = sentences[:limit] + [f"- *... and {len(review.summary) - limit} more; see the tables*"]
    lines += sentences
    lines += _node_table(change, limit)
    lines += _flow_table(change, limit)
    lines += _table_table(change, limit)
    lines += _settings_table(change, limit)
    return lines


def _node_table(change: Change, limit: int | None) -> list[str]:
    rows: list[tuple[str, str, str, str, str]] = []
    for n in change.nodes_added:
        rows.append((n.name, n.level, "added", "", n.upstream or "(top)"))
    for n in change.nodes_removed:
        rows.append((n.name, n.level, "removed", n.upstream or "(top)", ""))
    for m in change.nodes_moved:
        rows.append((m.name, m.level, "moved", m.before or "(top)", m.after or "(top)"))
    for f in change.node_fields:
        rows.append((f.subject, "", f"{f.field} changed", f.before or "", f.after or ""))
    if not rows:
        return []
    body = [
        f"| {q(name)} | {cell(level)} | {what} | {_opt(before)} | {_opt(after)} |"
        for name, level, what, before, after in sorted(rows)
    ]
    return [
        "",
        "#### Nodes",
        "",
        "| node | level | change | before | after |",
        "|---|---|---|---|---|",
        *_capped(body, limit, 5, "nodes"),
    ]


def _opt(value: str) -> str:
    return q(value) if value else ""


def _flow_table(change: Change, limit: int | None) -> list[str]:
    table = flows(change)
    if not table:
        return []
    body = [
        f"| {q(up)} | {', '.join(q(p) for p in starts)} | {', '.join(q(p) for p in stops)} |"
        for up, (starts, stops) in table.items()
    ]
    return [
        "",
        "#### Flows (which nodes' rows each upstream receives)",
        "",
        "| upstream | starts receiving from | stops receiving from |",
        "|---|---|---|",
        *_capped(body, limit, 3, "upstreams"),
    ]


def _filter(value: str | None) -> str:
    return q(cell(value)) if value else "*all rows*"


def _columns(value: tuple[str, ...] | None) -> str:
    return q(", ".join(value)) if value is not None else "*all*"


def _table_table(change: Change, limit: int | None) -> list[str]:
    rows: list[str] = []
    for t in change.tables_added:
        rows.append(
            f"| {q(t.set_name)} | {q(t.table)} | added | | {_filter(t.row_filter)} | "
            f"| {_columns(t.columns)} |"
        )
    for t in change.tables_removed:
        rows.append(
            f"| {q(t.set_name)} | {q(t.table)} | removed | {_filter(t.row_filter)} | | "
            f"{_columns(t.columns)} | |"
        )
    for e in change.tables_changed:
        f_before = _filter(e.before.row_filter) if e.filter_changed else "(same)"
        f_after = _filter(e.after.row_filter) if e.filter_changed else "(same)"
        c_before = _columns(e.before.columns) if e.columns_changed else "(same)"
        c_after = _columns(e.after.columns) if e.columns_changed else "(same)"
        rows.append(
            f"| {q(e.set_name)} | {q(e.table)} | changed | {f_before} | {f_after} | {c_before} | {c_after} |"
        )
    if not rows:
        return []
    return [
        "",
        "#### Replicated tables",
        "",
        "| set | table | change | filter before | filter after | columns before | columns after |",
        "|---|---|---|---|---|---|---|",
        *_capped(sorted(rows), limit, 7, "tables"),
    ]


def _settings_table(change: Change, limit: int | None) -> list[str]:
    rows = [
        f"| {cell(s.subject)} | {q(s.field)} | {cell(s.before or '')} | {cell(s.after or '')} |"
        for s in change.settings
    ]
    rows += [f"| set {q(s.subject)} | `replicate` | {s.before} | {s.after} |" for s in change.set_fields]
    for s in change.sets_added:
        rows.append(
            f"| set {q(s.name)} | set | | added: {', '.join(s.replicate)}; {len(s.tables)} table(s) |"
        )
    for s in change.sets_removed:
        rows.append(
            f"| set {q(s.name)} | set | {', '.join(s.replicate)}; {len(s.tables)} table(s) | removed |"
        )
    if not rows:
        return []
    return [
        "",
        "#### Settings and replication sets",
        "",
        "| scope | setting | before | after |",
        "|---|---|---|---|",
        *_capped(rows, limit, 4, "settings"),
    ]


def _diagram(review: Review, with_diagram: bool) -> list[str]:
    if review.mermaid is None:
        return []
    lines = ["", "### Topology of head", ""]
    if not with_diagram:
        return lines + ["*Diagram left out to keep this comment within size limits.*"]
    lines += ["```mermaid", review.mermaid.rstrip("\n"), "```", "", LEGEND]
    if review.mermaid_left_out:
        lines.append(f"{review.mermaid_left_out} unchanged node(s) are not drawn.")
    return lines


def _risks(review: Review, limit: int | None) -> list[str]:
    lines = ["", "### Risks", ""]
    if not review.risks:
        return lines + ["None found."]
    body = [
        f"| {_RISK_ICON[r.kind]} {r.kind.value} | {cell(r.subject)} | {cell(r.message)} |"
        for r in review.risks
    ]
    lines += ["| risk | subject | what it means |", "|---|---|---|", *_capped(body, limit, 3, "risks")]
    for risk in review.risks:
        if risk.estimates:
            lines += _estimates(risk.estimates, limit)
        if risk.text is not None:
            lines += _sql_block(risk.subject, redact_text(risk.text))
    return lines


def _sql_block(subject: str, text: str) -> list[str]:
    """SQL shown whole in a fence longer than any run of backticks in it (so it cannot close early)."""
    longest, run = 0, 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return ["", f"{cell(subject)}:", "", fence + "sql", text.rstrip("\n"), fence]


def _estimates(estimates: Sequence[CopyEstimate], limit: int | None) -> list[str]:
    body = [
        f"| {q(e.provider)} | {q(e.subscriber)} | {q(e.table)} | "
        f"{'unknown' if e.rows is None else f'{e.rows:,}'} | "
        f"{'unknown' if e.bytes is None else format_bytes(e.bytes)} |"
        for e in estimates
    ]
    return [
        "",
        "Initial copies (whole table on the provider: the row filter copies at most this):",
        "",
        "| from provider | to subscriber | table | rows (estimate) | size |",
        "|---|---|---|---|---|",
        *_capped(body, limit, 5, "copies"),
    ]


def _plan(review: Review, full: bool) -> list[str]:
    if review.plan is None:
        if review.live is Live.UNREACHABLE and review.unreachable:
            lines = ["", "### Plan against the live network", "", "Not computed: no node answered.", ""]
            lines += ["<details><summary>Why each node did not answer</summary>", ""]
            lines += ["| node | reason |", "|---|---|"]
            lines += [f"| {q(n)} | {cell(redact_text(r))} |" for n, r in sorted(review.unreachable.items())]
            return lines + ["", "</details>"]
        return []
    lines = ["", "### Plan against the live network", ""]
    text = render_markdown(review.plan)
    if full:
        # render_markdown opens with its own title; this section already has one.
        body = text.removeprefix("### reconcile plan\n\n").rstrip("\n")
        return lines + [body]
    return lines + _plan_summary(review.plan)


def _plan_summary(plan: Plan) -> list[str]:
    s = plan.summary
    lines = [
        f"**{summary_line(s.to_add, s.to_change, s.to_destroy)}** Too large to list here; counts per node:"
    ]
    lines += ["", "| node | add | change | destroy | blocking |", "|---|---|---|---|---|"]
    blockers = Counter(b.node for b in plan.blockers)
    for node, actions in plan.by_node().items():
        # The node's part of the plan, counted by the plan's own rule (Plan.summary).
        n = plan.model_copy(update={"actions": tuple(actions)}).summary
        lines.append(f"| {q(node)} | {n.to_add} | {n.to_change} | {n.to_destroy} | {blockers.get(node, 0)} |")
    for node in sorted(set(blockers) - set(plan.by_node())):
        lines.append(f"| {q(node)} | 0 | 0 | 0 | {blockers[node]} |")
    lines += ["", "Run `reconcile plan` for the full list."]
    return lines


def _render(review: Review, limit: int | None, plan_full: bool, diagram: bool) -> str:
    lines = _header(review)
    lines += _validation(review, limit)
    lines += _changes(review, limit)
    lines += _diagram(review, diagram)
    lines += _risks(review, limit)
    lines += _plan(review, plan_full)
    return "\n".join(lines) + "\n"


def render_review_markdown(review: Review, max_chars: int = MAX_CHARS) -> str:
    """The review as Markdown, at most `max_chars` characters.

    Tries the full rendering first, then shorter ones (fewer rows per table,
    the plan as counts, no diagram) until one fits; as a last resort the text
    is cut with a note. Same review, same bytes.
    """
    for limit, plan_full, diagram in (
        (None, True, True),
        (200, True, True),
        (200, False, True),
        (50, False, True),
        (20, False, False),
        (5, False, False),
    ):
        text = _render(review, limit, plan_full, diagram)
        if len(text) <= max_chars:
            return text
    note = (
        "\n\n*... cut to stay within the comment size limit; run `reconcile review` locally for all of it.*\n"
    )
    return text[: max_chars - len(note)] + note
