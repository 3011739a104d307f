"""`reconcile heartbeat`: each leaf writes its own beat, which `status` reads at every tier above it."""

from __future__ import annotations

from typing import Annotated

import typer

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import DirOption, ParallelismOption, fail, load_state_or_exit
from reconciler.heartbeat import beat, leaves

HeartbeatTimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=0.1, max=300, help="Connect and statement timeout per leaf, in seconds."),
]


def heartbeat_command(
    directory: DirOption = None,
    parallelism: ParallelismOption = 32,
    timeout: HeartbeatTimeoutOption = 10.0,
) -> None:
    """Upsert each leaf node's row in reconcile.heartbeat (beat_at = its now()), over its admin DSN.

    Run it every minute (deploy/systemd/reconcile-heartbeat.timer or
    deploy/cron/reconcile). Needs `monitoring: heartbeat: true` and an applied
    plan (apply creates the table). Exit codes: 0 every leaf beat, 3 some
    leaf did not (named on stderr), 1 error.
    """
    state = load_state_or_exit(directory)
    if not state.monitoring.heartbeat:
        raise fail("the desired state does not ask for a heartbeat (monitoring: heartbeat: true)")
    results = beat(state, leaves(state), timeout=timeout, parallelism=parallelism)
    failed = [b for b in results if b.error is not None]
    for b in results:
        if b.error is None:
            typer.echo(f"{b.node}: beat")
        else:
            typer.echo(f"{b.node}: no beat: {b.error}", err=True)
    raise typer.Exit(ExitCode.UNREACHABLE if failed else ExitCode.OK)
