"""`reconcile serve`: the status as metrics on /metrics and as a page on /; logs failed readings on stderr."""

from __future__ import annotations

from typing import Annotated

import typer

from reconciler.cli.options import (
    DirOption,
    HealthTimeoutOption,
    ParallelismOption,
    fail,
    load_state_or_exit,
    resolve_dir,
)
from reconciler.cli.status import DriftOption
from reconciler.errors import LoadError, ReconcileError
from reconciler.health.serve import serve
from reconciler.secrets import redact_text


def _log(message: str) -> None:
    typer.echo(f"reconcile serve: {message}", err=True)


def _reading_failed(exc: ReconcileError) -> None:
    if isinstance(exc, LoadError):
        problems = "\n".join(redact_text(str(p)) for p in exc.problems)
        _log(f"the desired state does not load:\n{problems}")
    else:
        _log(f"reading failed: {redact_text(str(exc))}")


def serve_command(
    directory: DirOption = None,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port for /metrics and the status page.")
    ] = 9847,
    address: Annotated[
        str, typer.Option("--address", help="Address to listen on (0.0.0.0 for every interface).")
    ] = "127.0.0.1",
    cache_seconds: Annotated[
        float, typer.Option("--cache-seconds", min=0, help="Serve a reading this long before reading again.")
    ] = 10.0,
    drift: DriftOption = True,
    parallelism: ParallelismOption = 32,
    timeout: HealthTimeoutOption = 10.0,
) -> None:
    """Serve the status as Prometheus metrics on /metrics and as an HTML page on /; the network is read
    once per cache period."""
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
            on_failure=_reading_failed,
            on_listening=lambda bound: _log(
                f"/metrics on http://{address}:{bound}/metrics, the status page on http://{address}:{bound}/"
            ),
        )
    except OSError as exc:
        raise fail(f"cannot listen on {address}:{port}: {exc.strerror}") from exc
