"""Options and helpers shared by the CLI's command modules (the only place that prints errors)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

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


def resolve_dir(directory: Path | None) -> Path:
    if directory is not None:
        return directory
    env = os.environ.get("RECONCILE_DIR")
    return Path(env) if env else DEFAULT_DIR


def load_state_or_exit(directory: Path | None) -> DesiredState:
    """Load and validate, or print every problem (file:line:column) and exit 1."""
    try:
        return load_desired_state(resolve_dir(directory))
    except LoadError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        typer.echo(f"{len(exc.problems)} problem(s); nothing was touched.", err=True)
        raise typer.Exit(1) from exc
