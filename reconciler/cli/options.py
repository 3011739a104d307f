"""Options and helpers every command shares: the desired-state directory, node selection, timeouts."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.exit_codes import ExitCode
from reconciler.errors import LoadError
from reconciler.load import load_desired_state
from reconciler.model import DesiredState

DEFAULT_DIR = Path("desired-state")

DirOption = Annotated[
    Path | None,
    typer.Option(
        "-d",
        "--desired-state",
        help="Desired-state directory (default: $RECONCILE_DIR or ./desired-state).",
        show_default=False,
    ),
]
NodeOption = Annotated[
    list[str] | None,
    typer.Option("--node", metavar="<name>", help="Limit to this node (repeatable).", show_default=False),
]
ParallelismOption = Annotated[int, typer.Option("--parallelism", min=1, help="Nodes read at the same time.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Connect timeout per node, in seconds.")
]
# status, serve and graph also bound every statement with it.
HealthTimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Connect and statement timeout per node, in seconds.")
]


def resolve_dir(directory: Path | None) -> Path:
    if directory is not None:
        return directory
    env = os.environ.get("RECONCILE_DIR")
    return Path(env) if env else DEFAULT_DIR


def fail(message: str, code: ExitCode = ExitCode.ERROR) -> typer.Exit:
    """Print `error: message` on stderr; the caller raises the returned Exit."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def say_if_none_answered(asked: Collection[str], unreachable: Collection[str], what: str) -> None:
    """When not one node answered, say why the output above is empty, on stderr (machine output stays clean).

    An empty plan or a page of 'unreachable' reads like a network in sync or
    one gone down; when nothing answered at all, the likelier cause is on the
    tool's side (wrong host or port, no route, servers not started).
    """
    if not asked or set(asked) - set(unreachable):
        return
    typer.echo(
        f"error: no node answered ({len(asked)} of {len(asked)} unreachable), so {what}."
        " Check the DSNs and the reasons above, the network from this host, and that the servers run"
        " (the example network: `reconcile sandbox up`).",
        err=True,
    )


def load_state_or_exit(directory: Path | None) -> DesiredState:
    """Load and validate, or print every problem (file:line:column) and exit 1."""
    try:
        return load_desired_state(resolve_dir(directory))
    except LoadError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        typer.echo(f"{len(exc.problems)} problem(s); nothing was touched.", err=True)
        raise typer.Exit(ExitCode.ERROR) from exc
