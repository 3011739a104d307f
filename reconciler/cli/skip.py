"""`reconcile skip`: show a subscription's poisoned transaction, confirm, skip it, then repair its tables."""

from __future__ import annotations

from typing import Annotated

import typer

from reconciler import gitops
from reconciler.cli.exit_codes import ExitCode, for_verify
from reconciler.cli.options import DirOption, fail, load_state_or_exit, resolve_dir
from reconciler.render.skip import render_skip_result, render_skip_target
from reconciler.skip import SkipError, SkipOptions, find_target, run_skip


def skip_command(
    subscriber: Annotated[str, typer.Argument(help="The node whose subscription fails.", show_default=False)],
    provider: Annotated[str, typer.Argument(help="The node it subscribes to.", show_default=False)],
    directory: DirOption = None,
    lsn: Annotated[
        str | None,
        typer.Option(
            "--lsn",
            help="Finish LSN of the transaction to skip, when the server log cannot say"
            " (it must match the log's when the log names one).",
            show_default=False,
        ),
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Connect timeout per node, in seconds.")
    ] = 10.0,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=1.0,
            max=3600.0,
            help="Seconds to wait for the link to pass the transaction and catch up.",
        ),
    ] = 60.0,
) -> None:
    """Skip the one transaction a subscription keeps failing on, then verify and repair what it carried.

    Never the default: the transaction's changes are lost at the subscriber until
    the repair copies the provider's rows. Exit 0 skipped and repaired, 2 tables
    still differ, 1 refused, cancelled or failed.
    """
    state = load_state_or_exit(directory)
    revision = gitops.revision(resolve_dir(directory))
    try:
        target = find_target(state, subscriber, provider, lsn, timeout)
    except SkipError as exc:
        raise fail(str(exc)) from exc
    typer.echo(render_skip_target(target), nl=False)
    if not auto_approve:
        answer = typer.prompt(
            "\nDo you want to skip this transaction? Only 'yes' will be accepted",
            default="",
            show_default=False,
        )
        if answer.strip() != "yes":
            typer.echo("Skip cancelled; nothing was done.")
            raise typer.Exit(ExitCode.ERROR)
    try:
        result = run_skip(
            state,
            target,
            SkipOptions(timeout=timeout, wait=wait),
            desired_commit=revision.commit,
            dirty=bool(revision.dirty_files),
        )
    except SkipError as exc:
        raise fail(str(exc)) from exc
    typer.echo(render_skip_result(result), nl=False)
    if result.verify is None:
        raise typer.Exit(ExitCode.ERROR)
    raise typer.Exit(for_verify(result.verify))
