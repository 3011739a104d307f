"""`reconcile sandbox up|down|status`: local PostgreSQL + pglogical servers for the local nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler import sandbox
from reconciler.cli.help import PlainFlagsGroup
from reconciler.cli.options import DirOption, fail, load_state_or_exit
from reconciler.errors import SandboxError

sandbox_app = typer.Typer(
    name="sandbox",
    help="Start, inspect and stop local PostgreSQL 15 + pglogical servers for the local nodes.",
    no_args_is_help=True,
    cls=PlainFlagsGroup,
)

DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        help="Where the servers keep their data, one subdirectory per port.",
    ),
]


def _nodes(plan: sandbox.ServerPlan) -> str:
    return ", ".join(f"{db.node} (db {db.dbname})" for db in plan.databases)


@sandbox_app.command()
def up(
    directory: DirOption = None,
    schema: Annotated[
        Path | None,
        typer.Option("--schema", help="SQL file run on every node database (idempotent)."),
    ] = None,
    data_dir: DataDirOption = sandbox.DEFAULT_DATA_DIR,
) -> None:
    """Start one server per local port and create every node's database."""
    state = load_state_or_exit(directory)
    try:
        reports = sandbox.up(state, data_dir, schema)
    except SandboxError as exc:
        raise fail(str(exc)) from exc
    for report in reports:
        plan = report.plan
        created = ", ".join(report.created_databases) or "none"
        typer.echo(
            f"port {plan.port} ({plan.level}): server {report.server}, data {report.data_dir}; "
            f"nodes: {_nodes(plan)}; new databases: {created}"
        )
    typer.echo(f"sandbox up: {len(reports)} servers, {sum(len(r.plan.databases) for r in reports)} nodes")


@sandbox_app.command()
def down(directory: DirOption = None, data_dir: DataDirOption = sandbox.DEFAULT_DATA_DIR) -> None:
    """Stop the local servers and delete their data directories."""
    state = load_state_or_exit(directory)
    try:
        plans = sandbox.down(state, data_dir)
    except SandboxError as exc:
        raise fail(str(exc)) from exc
    for plan in plans:
        typer.echo(f"port {plan.port} ({plan.level}): stopped, data removed")
    typer.echo(f"sandbox down: {len(plans)} servers")


@sandbox_app.command()
def status(directory: DirOption = None, data_dir: DataDirOption = sandbox.DEFAULT_DATA_DIR) -> None:
    """Show each local server: port, data directory, running or not, its node databases."""
    state = load_state_or_exit(directory)
    try:
        servers = sandbox.status(state, data_dir)
    except SandboxError as exc:
        raise fail(str(exc)) from exc
    for server in servers:
        plan = server.plan
        if not server.running and not server.data_exists:
            typer.echo(
                f"port {plan.port} ({plan.level}): not set up (no data directory); "
                f"nodes: {_nodes(plan)}; `reconcile sandbox up` creates it"
            )
            continue
        typer.echo(
            f"port {plan.port} ({plan.level}): {'running' if server.running else 'stopped'}, "
            f"data {server.data_dir}"
        )
        for db in plan.databases:
            there = "present" if db.dbname in server.existing_databases else "missing"
            typer.echo(f"  {db.node}: database {db.dbname} {there}")
