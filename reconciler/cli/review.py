"""`reconcile review`: what a merge request changes, what it would do to live, and how risky it is."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import DirOption, ParallelismOption, TimeoutOption, fail, resolve_dir
from reconciler.gitops import RevisionError
from reconciler.render.review_json import render_review_json
from reconciler.render.review_markdown import render_review_markdown
from reconciler.review import build_review


class ReviewFormat(StrEnum):
    MARKDOWN = "markdown"
    JSON = "json"


def review_command(
    base: Annotated[
        str, typer.Option("--base", help="Git revision the merge request starts from (e.g. origin/main).")
    ],
    head: Annotated[str, typer.Option("--head", help="Git revision proposed.")] = "HEAD",
    directory: DirOption = None,
    fmt: Annotated[ReviewFormat, typer.Option("--format", help="Output format.")] = ReviewFormat.MARKDOWN,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Also write the output to this file (for a CI comment)."),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not contact the live network (no plan, no copy sizes).")
    ] = False,
    parallelism: ParallelismOption = 32,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Review a change of the desired state between two git revisions, as Markdown for a merge request.

    Reads both revisions from git (never the working tree): the semantic change,
    validation of head (errors are marked blocking), the plan of head against the
    live network when it answers, risk labels and a Mermaid diagram.

    Exit codes: 0 the review was produced (even when it reports blocking problems:
    read `blocking` in the JSON or the first line of the Markdown); 1 the review
    itself failed (not a git repository, unknown revision).
    """
    try:
        review = build_review(
            resolve_dir(directory),
            base,
            head,
            timeout=timeout,
            offline=offline,
            parallelism=parallelism,
        )
    except RevisionError as exc:
        raise fail(str(exc)) from exc
    text = render_review_json(review) if fmt is ReviewFormat.JSON else render_review_markdown(review)
    typer.echo(text, nl=False)
    if out is not None:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise fail(f"cannot write {out}: {exc.strerror}") from exc
    if review.blocking:
        typer.echo("review: the head revision is BLOCKED (see the output); exit code stays 0.", err=True)
    raise typer.Exit(ExitCode.OK)
