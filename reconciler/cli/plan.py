"""`reconcile plan`: print what differs between the desired state and the live network."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.exit_codes import for_plan
from reconciler.cli.options import (
    DirOption,
    NodeOption,
    ParallelismOption,
    TimeoutOption,
    fail,
    load_state_or_exit,
    resolve_dir,
    say_if_none_answered,
)
from reconciler.errors import PlanError
from reconciler.plan import save_plan
from reconciler.planner import compute_plan
from reconciler.render.plan_json import render_json
from reconciler.render.plan_markdown import render_markdown
from reconciler.render.plan_text import render_text
from reconciler.render.stats import render_stats_text, stats_rows


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


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
        raise fail(str(exc)) from exc
    if fmt is Format.JSON:
        text = render_json(run.plan, stats_rows(run.inspection) if stats else None)
    elif fmt is Format.MARKDOWN:
        text = render_markdown(run.plan)
    else:
        text = render_text(run.plan)
    typer.echo(text, nl=False)
    say_if_none_answered(
        run.plan.nodes, run.plan.unreachable, "nothing was read: the empty plan says nothing about drift"
    )
    if stats and fmt is not Format.JSON:
        typer.echo(render_stats_text(run.inspection), nl=False, err=fmt is Format.MARKDOWN)
    if out is not None:
        try:
            save_plan(run.plan, out)
        except PlanError as exc:
            raise fail(str(exc)) from exc
        typer.echo(f"Plan saved to {out}.", err=True)
    raise typer.Exit(for_plan(run.plan, detailed_exitcode))
