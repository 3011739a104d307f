"""`reconcile status`, `serve` and `graph`: replication health for humans, cron and Prometheus."""

from __future__ import annotations

import contextlib
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli_common import DirOption, load_state_or_exit, resolve_dir
from reconciler.errors import PlanError
from reconciler.health.network import HealthRun, network_health
from reconciler.health.report import EXIT_ERROR
from reconciler.health.serve import serve
from reconciler.render.graph import render_dot, render_mermaid
from reconciler.render.prometheus import render_prometheus
from reconciler.render.status import render_status_json, render_status_text


class StatusFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    PROMETHEUS = "prometheus"


class GraphFormat(StrEnum):
    MERMAID = "mermaid"
    DOT = "dot"


ParallelismOption = Annotated[int, typer.Option("--parallelism", min=1, help="Nodes read at the same time.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Connect and statement timeout per node, in seconds.")
]
DriftOption = Annotated[
    bool,
    typer.Option(
        "--drift/--no-drift",
        help="Also count the changes `plan` would make per node (one more catalog read per node).",
    ),
]


def write_atomically(path: Path, text: str) -> None:
    """Temp file in the same directory, then os.replace: a reader (node_exporter) never sees half a file."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # mkstemp makes 0600; the textfile collector often runs as another user.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _run(directory: Path | None, drift: bool, parallelism: int, timeout: float) -> HealthRun:
    state = load_state_or_exit(directory)
    try:
        return network_health(
            state, resolve_dir(directory), drift=drift, parallelism=parallelism, timeout=timeout
        )
    except PlanError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from exc


def status_command(
    directory: DirOption = None,
    fmt: Annotated[StatusFormat, typer.Option("--format", help="Output format.")] = StatusFormat.TEXT,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Write to FILE atomically (node_exporter textfile collector)."),
    ] = None,
    drift: DriftOption = True,
    parallelism: ParallelismOption = 32,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Replication health of every node, edge and slot, judged against `monitoring:` thresholds.

    Exit codes: 0 healthy, 2 degraded (anything WARN or CRIT), 3 some nodes
    unreachable, 1 error.
    """
    run = _run(directory, drift, parallelism, timeout)
    if fmt is StatusFormat.JSON:
        text = render_status_json(run.report)
    elif fmt is StatusFormat.PROMETHEUS:
        text = render_prometheus(run.report, seconds=run.seconds, timestamp=run.timestamp)
    else:
        text = render_status_text(run.report)
    if out is None:
        typer.echo(text, nl=False)
    else:
        try:
            write_atomically(out, text)
        except OSError as exc:
            typer.echo(f"error: cannot write {out}: {exc.strerror}", err=True)
            raise typer.Exit(EXIT_ERROR) from exc
    raise typer.Exit(run.report.exit_code)


def serve_command(
    directory: DirOption = None,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port for /metrics.")] = 9847,
    address: Annotated[
        str, typer.Option("--address", help="Address to listen on (0.0.0.0 for every interface).")
    ] = "127.0.0.1",
    cache_seconds: Annotated[
        float, typer.Option("--cache-seconds", min=0, help="Serve a reading this long before reading again.")
    ] = 10.0,
    drift: DriftOption = True,
    parallelism: ParallelismOption = 32,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Serve the status as Prometheus metrics on /metrics; the network is read once per cache period."""
    load_state_or_exit(directory)  # refuse to start on an invalid desired state
    try:
        serve(
            resolve_dir(directory),
            address=address,
            port=port,
            cache_seconds=cache_seconds,
            drift=drift,
            parallelism=parallelism,
            timeout=timeout,
        )
    except OSError as exc:
        typer.echo(f"error: cannot listen on {address}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(EXIT_ERROR) from exc


def graph_command(
    directory: DirOption = None,
    fmt: Annotated[GraphFormat, typer.Option("--format", help="Graph language.")] = GraphFormat.MERMAID,
    live: Annotated[
        bool, typer.Option("--live/--offline", help="Colour by live health (--offline: topology only).")
    ] = True,
    parallelism: ParallelismOption = 32,
    timeout: TimeoutOption = 5.0,
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
