"""The typer app: every command registered under its name, in the order `--help` lists them."""

from __future__ import annotations

from typing import Annotated

import typer

from reconciler import __version__
from reconciler.cli.apply import apply_command
from reconciler.cli.graph import graph_command
from reconciler.cli.heartbeat import heartbeat_command
from reconciler.cli.help import PlainFlagsGroup
from reconciler.cli.plan import plan_command
from reconciler.cli.review import review_command
from reconciler.cli.sandbox import sandbox_app
from reconciler.cli.serve import serve_command
from reconciler.cli.skip import skip_command
from reconciler.cli.status import status_command
from reconciler.cli.validate import topology_command, validate_command
from reconciler.cli.verify import verify_command

app = typer.Typer(
    name="reconcile",
    help="Declarative reconciler for PostgreSQL logical replication topologies.",
    no_args_is_help=True,
    cls=PlainFlagsGroup,
)
app.add_typer(sandbox_app, name="sandbox")
app.command("validate")(validate_command)
app.command("topology")(topology_command)
app.command("plan")(plan_command)
app.command("apply")(apply_command)
app.command("status")(status_command)
app.command("serve")(serve_command)
app.command("graph")(graph_command)
app.command("verify")(verify_command)
app.command("review")(review_command)
app.command("skip")(skip_command)
app.command("heartbeat")(heartbeat_command)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"reconcile {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Declarative reconciler for PostgreSQL logical replication topologies."""


def main() -> None:
    app()
