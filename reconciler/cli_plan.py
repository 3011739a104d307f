"""`reconcile plan`: print what differs between the desired state and the live network."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli_common import DirOption, load_state_or_exit, resolve_dir
from reconciler.errors import PlanError
from reconciler.inspect import InspectResult
from reconciler.plan import Plan, save_plan
from reconciler.planner import compute_plan
from reconciler.render.json import render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_UNREACHABLE = 3


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


NodeOption = Annotated[
    list[str] | None,
    typer.Option("--node", help="Limit to this node (repeatable).", show_default=False),
]
ParallelismOption = Annotated[int, typer.Option("--parallelism", min=1, help="Nodes read at the same time.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Connect timeout per node, in seconds.")
]


def plan_exit_code(plan: Plan, detailed: bool) -> int:
    """SPEC: 1 blocking errors, 3 some nodes unreachable, 2 changes (detailed only), else 0."""
    if plan.blockers:
        return EXIT_ERROR
    if plan.unreachable:
        return EXIT_UNREACHABLE
    if detailed and plan.actions:
        return EXIT_CHANGES
    return EXIT_OK


def stats_rows(inspection: InspectResult) -> list[dict[str, object]]:
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


def render(plan: Plan, fmt: Format) -> str:
    if fmt is Format.JSON:
        return render_json(plan)
    if fmt is Format.MARKDOWN:
        return render_markdown(plan)
    return render_text(plan)


def plan_command(
    directory: DirOption = None,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Save the plan (with live fingerprints and git commit)."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TEXT,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when there are changes.")
    ] = False,
    node: NodeOption = None,
    parallelism: ParallelismOption = 32,
    timeout: TimeoutOption = 10.0,
    stats: Annotated[
        bool, typer.Option("--stats", help="Report connections, round trips and time per node.")
    ] = False,
) -> None:
    """Read every node's live catalogs at once and print the ordered actions that would converge them.

    Exit codes: 0 in sync (or changes without --detailed-exitcode), 2 changes
    with --detailed-exitcode, 1 blocking errors, 3 some nodes unreachable.
    """
    state = load_state_or_exit(directory)
    try:
        run = compute_plan(
            state, resolve_dir(directory), nodes=node, parallelism=parallelism, timeout=timeout
        )
    except PlanError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from exc
    text = render(run.plan, fmt)
    if stats and fmt is Format.JSON:
        document = json.loads(text)
        document["stats"] = stats_rows(run.inspection)
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    typer.echo(text, nl=False)
    if stats and fmt is not Format.JSON:
        typer.echo(render_stats_text(run.inspection), nl=False, err=fmt is Format.MARKDOWN)
    if out is not None:
        try:
            save_plan(run.plan, out)
        except PlanError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_ERROR) from exc
        typer.echo(f"Plan saved to {out}.", err=True)
    raise typer.Exit(plan_exit_code(run.plan, detailed_exitcode))
