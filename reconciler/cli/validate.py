"""`reconcile validate` and `reconcile topology`: the desired state checked offline, and its derived edges."""

from __future__ import annotations

import typer

from reconciler import topology
from reconciler.cli.options import DirOption, load_state_or_exit
from reconciler.render.topology import render_topology


def validate_command(
    directory: DirOption = None,
    show_topology: bool = typer.Option(
        False, "--topology", help="Also print the derived topology (edges, subscriptions)."
    ),
) -> None:
    """Check the desired state offline. Exit 0 valid, 1 invalid."""
    state = load_state_or_exit(directory)
    typer.echo(f"valid: {len(state.nodes)} nodes, {len(topology.edges(state))} edges")
    if show_topology:
        typer.echo(render_topology(state), nl=False)


def topology_command(directory: DirOption = None) -> None:
    """Print the derived topology: levels, nodes, and each edge's subscription."""
    state = load_state_or_exit(directory)
    typer.echo(render_topology(state), nl=False)
