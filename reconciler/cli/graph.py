"""`reconcile graph`: the topology as Mermaid or DOT, coloured by live health where nodes answer."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import (
    DirOption,
    HealthTimeoutOption,
    ParallelismOption,
    load_state_or_exit,
    resolve_dir,
)
from reconciler.health.network import network_health
from reconciler.render.graph import render_dot, render_mermaid


class GraphFormat(StrEnum):
    MERMAID = "mermaid"
    DOT = "dot"


def graph_command(
    directory: DirOption = None,
    fmt: Annotated[GraphFormat, typer.Option("--format", help="Graph language.")] = GraphFormat.MERMAID,
    live: Annotated[
        bool, typer.Option("--live/--offline", help="Colour by live health (--offline: topology only).")
    ] = True,
    parallelism: ParallelismOption = 32,
    timeout: HealthTimeoutOption = 5.0,
) -> None:
    """The topology as a graph, coloured by live health where nodes answer. Exit 0."""
    state = load_state_or_exit(directory)
    report = None
    if live:
        report = network_health(
            state, resolve_dir(directory), drift=False, parallelism=parallelism, timeout=timeout
        ).report
    render = render_dot if fmt is GraphFormat.DOT else render_mermaid
    typer.echo(render(state, report), nl=False)
    raise typer.Exit(ExitCode.OK)
