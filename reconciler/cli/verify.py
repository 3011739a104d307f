"""`reconcile verify`: compare subscribers with their providers' passing rows; `--repair` fixes them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from reconciler.cli.exit_codes import for_verify
from reconciler.cli.options import DirOption, fail, load_state_or_exit
from reconciler.render.verify import render_verify_json, render_verify_text
from reconciler.verify.run import Options, run_verify
from reconciler.verify.targets import TargetError


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


def verify_command(
    directory: DirOption = None,
    table: Annotated[
        list[str] | None,
        typer.Option("--table", help="Only this declared table (repeatable; 'public.' may be left out)."),
    ] = None,
    node: Annotated[
        list[str] | None,
        typer.Option(
            "--node",
            help="Only the subscriber this node is or feeds (repeatable).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TEXT,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Insert missing, update differing and delete stale rows on the subscribers, bottom-up.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Connect timeout per node, seconds.")
    ] = 10.0,
    wait: Annotated[
        float,
        typer.Option(
            "--wait", min=0.0, help="After repairing a level, seconds to wait for it to replicate upward."
        ),
    ] = 30.0,
) -> None:
    """Compare rows passing each filter at every provider with its subscriber.

    Exit 0 consistent, 2 differences (after repair, with --repair), 1 error, 3 unreachable.
    """
    state = load_state_or_exit(directory)
    try:
        report = run_verify(
            state,
            tables=table,
            nodes=node,
            do_repair=repair,
            options=Options(timeout=timeout, wait_timeout=wait),
        )
    except TargetError as exc:
        raise fail(str(exc)) from exc
    code = for_verify(report)
    text = render_verify_json(report, code) if fmt is Format.JSON else render_verify_text(report)
    typer.echo(text, nl=False)
    raise typer.Exit(code)
