"""The semantic change in plain sentences: what a reviewer reads first."""

from __future__ import annotations

from reconciler.model import DesiredState
from reconciler.render.markup import code as q
from reconciler.review.change import Change


def _names(names: list[str]) -> str:
    quoted = [q(n) for n in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def flows(change: Change) -> dict[str, tuple[list[str], list[str]]]:
    """{upstream: (starts receiving from, stops receiving from)} from the derived links."""
    result: dict[str, tuple[list[str], list[str]]] = {}
    for link in change.links_added:
        result.setdefault(link.subscriber, ([], []))[0].append(link.provider)
    for link in change.links_removed:
        result.setdefault(link.subscriber, ([], []))[1].append(link.provider)
    return {k: (sorted(v[0]), sorted(v[1])) for k, v in sorted(result.items())}


def summarise(change: Change, base: DesiredState | None, head: DesiredState) -> list[str]:
    """One sentence per change, in a fixed order: network, nodes, flows, sets, tables."""
    out: list[str] = []
    if not change.base_exists:
        out.append(
            f"The desired state is new: {len(head.nodes)} node(s) on {len(head.levels)} levels "
            f"({', '.join(q(lv) for lv in head.levels)}), {len(head.replication_sets)} replication set(s)."
        )
    for setting in change.settings:
        if setting.field == "levels":
            extra = []
            if change.levels_added:
                extra.append(f"added {_names(list(change.levels_added))}")
            if change.levels_removed:
                extra.append(f"removed {_names(list(change.levels_removed))}")
            tail = f" ({'; '.join(extra)})" if extra else " (reordered)"
            out.append(f"Levels (leaf first) change from {q(setting.before)} to {q(setting.after)}{tail}.")
        elif setting.subject == "monitoring":
            out.append(
                f"Monitoring threshold {q(setting.field)} changes from {setting.before} to {setting.after}."
            )
        else:
            out.append(
                f"{setting.field.capitalize()} changes from {q(setting.before)} to {q(setting.after)}."
            )
    for n in change.nodes_added:
        where = f", flows to {q(n.upstream)}" if n.upstream else ", top level"
        out.append(f"New {n.level} node {q(n.name)}{where}.")
    for n in change.nodes_removed:
        where = f"; its rows no longer flow to {q(n.upstream)}" if n.upstream else ""
        out.append(f"{n.level.capitalize()} node {q(n.name)} is removed{where}.")
    for m in change.nodes_moved:
        if m.before and m.after:
            out.append(
                f"{m.level.capitalize()} node {q(m.name)} moves from {q(m.before)} to {q(m.after)}: its rows "
                f"stop flowing to {q(m.before)} and start flowing to {q(m.after)}."
            )
        elif m.after:
            out.append(f"{m.level.capitalize()} node {q(m.name)} now flows to {q(m.after)}.")
        else:
            out.append(
                f"{m.level.capitalize()} node {q(m.name)} no longer flows to {q(m.before)} (top level)."
            )
    for f in change.node_fields:
        if f.field == "level":
            out.append(f"Node {q(f.subject)} changes level from {q(f.before)} to {q(f.after)}.")
        elif f.field in ("dsn", "admin_dsn"):
            out.append(f"Node {q(f.subject)}: {f.field} changes.")
        else:
            out.append(f"Node {q(f.subject)}: {f.field} changes from {q(f.before)} to {q(f.after)}.")
    added_or_moved = {n.name for n in change.nodes_added} | {m.name for m in change.nodes_moved}
    removed = {n.name for n in change.nodes_removed}
    for upstream, (starts, stops) in flows(change).items():
        # Sentences above already say it for added, moved and removed nodes.
        starts = [p for p in starts if p not in added_or_moved]
        stops = [p for p in stops if p not in added_or_moved | removed]
        if upstream in removed:
            continue
        if starts:
            out.append(f"{q(upstream)} starts receiving from {_names(starts)}.")
        if stops:
            out.append(f"{q(upstream)} stops receiving from {_names(stops)}.")
    for lc in change.links_changed:
        why = "now has children" if lc.after else "no longer has children"
        out.append(
            f"The link {q(lc.provider)} -> {q(lc.subscriber)} is re-created with forward_origins "
            f"{{{','.join(lc.after)}}} (was {{{','.join(lc.before)}}}): {q(lc.provider)} {why}."
        )
    for new in change.sets_added:
        out.append(
            f"New replication set {q(new.name)} replicating {', '.join(new.replicate) or 'nothing'}, "
            f"with {len(new.tables)} table(s)."
        )
    for gone in change.sets_removed:
        out.append(f"Replication set {q(gone.name)} is removed with its {len(gone.tables)} table(s).")
    for f in change.set_fields:
        out.append(f"Set {q(f.subject)} replicates {f.after or 'nothing'} (was {f.before or 'nothing'}).")
    new_sets = {s.name for s in change.sets_added}
    gone_sets = {s.name for s in change.sets_removed}
    for t in change.tables_added:
        if t.set_name in new_sets:
            continue
        filt = f" with filter {q(t.row_filter)}" if t.row_filter else " without a filter (all rows)"
        out.append(f"Table {q(t.table)} joins set {q(t.set_name)}{filt}.")
    for t in change.tables_removed:
        if t.set_name in gone_sets:
            continue
        out.append(f"Table {q(t.table)} leaves set {q(t.set_name)}: its changes stop flowing upstream.")
    for e in change.tables_changed:
        if e.filter_changed:
            out.append(
                f"Filter of {q(e.table)} in set {q(e.set_name)}: {_filter(e.before.row_filter)} -> "
                f"{_filter(e.after.row_filter)}."
            )
        if e.columns_changed:
            out.append(
                f"Columns of {q(e.table)} in set {q(e.set_name)}: {_columns(e.before.columns)} -> "
                f"{_columns(e.after.columns)}."
            )
    return out


def _filter(value: str | None) -> str:
    return q(value) if value else "none (all rows)"


def _columns(value: tuple[str, ...] | None) -> str:
    return q(", ".join(value)) if value is not None else "all columns"
