"""The `reconcile` command line: a thin typer app; maps typed errors to exit codes."""

from __future__ import annotations

import typer

from reconciler import topology
from reconciler.cli_apply import apply_command
from reconciler.cli_common import DirOption, load_state_or_exit
from reconciler.cli_plan import plan_command
from reconciler.cli_review import review_command
from reconciler.cli_sandbox import sandbox_app
from reconciler.cli_status import graph_command, serve_command, status_command
from reconciler.cli_verify import verify_command

app = typer.Typer(
    name="reconcile",
    help="Declarative reconciler for PostgreSQL logical replication topologies.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(sandbox_app, name="sandbox")


@app.command()
def validate(
    directory: DirOption = None,
    show_topology: bool = typer.Option(
        False, "--topology", help="Also print the derived topology (edges, subscriptions)."
    ),
) -> None:
    """Check the desired state offline. Exit 0 valid, 1 invalid."""
    state = load_state_or_exit(directory)
    typer.echo(f"valid: {len(state.nodes)} nodes, {len(topology.edges(state))} edges")
    if show_topology:
        typer.echo(topology.describe(state), nl=False)


@app.command("topology")
def show_topology(directory: DirOption = None) -> None:
    """Print the derived topology: levels, nodes, and each edge's subscription."""
    state = load_state_or_exit(directory)
    typer.echo(topology.describe(state), nl=False)


app.command("plan")(plan_command)
app.command("apply")(apply_command)
app.command("status")(status_command)
app.command("serve")(serve_command)
app.command("graph")(graph_command)
app.command("verify")(verify_command)
app.command("review")(review_command)


def main() -> None:
    app()
