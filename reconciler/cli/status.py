"""`reconcile status`: replication health for humans, cron and the node_exporter textfile collector."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.exit_codes import for_status
from reconciler.cli.options import (
    DirOption,
    HealthTimeoutOption,
    ParallelismOption,
    fail,
    load_state_or_exit,
    resolve_dir,
    say_if_none_answered,
)
from reconciler.cli.progress import echo_status
from reconciler.errors import LoadError, PlanError
from reconciler.files import atomic_write
from reconciler.health.network import HealthRun, network_health
from reconciler.render.prometheus import render_prometheus
from reconciler.render.status import render_status_json, render_status_text


class StatusFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    PROMETHEUS = "prometheus"


DriftOption = Annotated[
    bool,
    typer.Option(
        "--drift/--no-drift",
        help="Also count the changes `plan` would make per node (one more catalog read per node).",
    ),
]


def write_textfile(path: Path, text: str) -> None:
    """Write atomically (node_exporter never reads half a file), mode 0644.

    The textfile collector often runs as another user than reconcile.
    """
    atomic_write(path, text, mode=0o644)


def _run(directory: Path | None, drift: bool, parallelism: int, timeout: float) -> HealthRun:
    state = load_state_or_exit(directory)
    try:
        return network_health(
            state, resolve_dir(directory), drift=drift, parallelism=parallelism, timeout=timeout
        )
    except (PlanError, LoadError) as exc:  # LoadError: the operator configuration changed meanwhile
        raise fail(str(exc)) from exc


def status_command(
    directory: DirOption = None,
    fmt: Annotated[StatusFormat, typer.Option("--format", help="Output format.")] = StatusFormat.TEXT,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Write to FILE atomically (node_exporter textfile collector)."),
    ] = None,
    drift: DriftOption = True,
    parallelism: ParallelismOption = 32,
    timeout: HealthTimeoutOption = 10.0,
) -> None:
    """Replication health of every node, edge and slot, judged against `monitoring:` thresholds.

    Exit codes: 0 healthy, 2 degraded (anything WARN or CRIT), 3 some nodes
    unreachable, 1 error.
    """
    run = _run(directory, drift, parallelism, timeout)
    code = for_status(run.report)
    if fmt is StatusFormat.JSON:
        text = render_status_json(run.report, code)
    elif fmt is StatusFormat.PROMETHEUS:
        text = render_prometheus(run.report, seconds=run.seconds, timestamp=run.timestamp)
    else:
        text = render_status_text(run.report)
    if out is None and fmt is StatusFormat.TEXT:
        echo_status(text)
    elif out is None:
        typer.echo(text, nl=False)
    else:
        try:
            write_textfile(out, text)
        except OSError as exc:
            raise fail(f"cannot write {out}: {exc.strerror}") from exc
    say_if_none_answered([n.node for n in run.report.nodes], run.report.unreachable, "no health was read")
    raise typer.Exit(code)
