"""`reconcile apply`: show the plan, confirm, converge the live network, report what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler import gitops
from reconciler.apply import ApplyOptions, apply_plan
from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import (
    DirOption,
    NodeOption,
    ParallelismOption,
    TimeoutOption,
    fail,
    load_state_or_exit,
    resolve_dir,
)
from reconciler.errors import ApplyError, PlanError
from reconciler.model import DesiredState
from reconciler.plan import Plan, foreign_dsns, load_plan
from reconciler.planner import compute_plan
from reconciler.render.apply import render_apply_report, render_unplanned
from reconciler.render.plan_text import render_text


def _check_saved_plan(plan: Plan, state: DesiredState, commit: str | None) -> None:
    """A saved plan runs only against the desired state it was computed from."""
    undeclared = sorted({a.node for a in plan.actions} - set(state.nodes))
    if undeclared:
        raise PlanError(f"the saved plan acts on node(s) no longer declared: {', '.join(undeclared)}")
    made_from = plan.desired_commit
    if made_from and commit and made_from != commit:
        raise PlanError(
            f"the saved plan was made from desired-state commit {made_from[:12]}, but the directory is at"
            f" {commit[:12]}; make a new plan"
        )
    foreign = foreign_dsns(plan, state)
    if foreign:
        raise PlanError(
            "the saved plan installs connection strings the desired state does not declare ("
            + "; ".join(foreign)
            + "); it was edited or made from other files: make a new plan"
        )


def apply_command(
    plan_file: Annotated[
        Path | None, typer.Argument(help="A plan saved with `reconcile plan -o FILE`.", show_default=False)
    ] = None,
    directory: DirOption = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")
    ] = False,
    allow_destroy: Annotated[
        bool, typer.Option("--allow-destroy", help="Also run destructive actions (drops).")
    ] = False,
    allow_dirty: Annotated[
        bool,
        typer.Option(
            "--allow-dirty", help="Run even if the desired-state repository has uncommitted changes."
        ),
    ] = False,
    lock_timeout: Annotated[
        float | None,
        typer.Option(
            "--lock-timeout",
            min=0,
            help="Wait this many seconds for another apply's lock (default: fail at once).",
        ),
    ] = None,
    node: NodeOption = None,
    parallelism: ParallelismOption = 32,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Converge the live network: lock, re-check, run the plan in dependency order, record it.

    Exit codes: 0 done (converged), 1 failed or refused (what was done and
    what was not is printed; rerunning converges).
    """
    state = load_state_or_exit(directory)
    root = resolve_dir(directory)
    revision = gitops.revision(root)
    if revision.dirty_files and not allow_dirty:
        raise fail(
            "the desired-state repository has uncommitted changes: "
            + ", ".join(revision.dirty_files)
            + "; commit them or pass --allow-dirty. Nothing was done."
        )
    try:
        if plan_file is not None:
            plan: Plan = load_plan(plan_file)
            _check_saved_plan(plan, state, revision.commit)
        else:
            plan = compute_plan(state, root, nodes=node, parallelism=parallelism, timeout=timeout).plan
    except PlanError as exc:
        raise fail(str(exc)) from exc
    typer.echo(render_text(plan), nl=False)
    if plan.blockers:
        raise fail("the plan has blocking errors; nothing was done.")
    if not plan.actions:
        raise typer.Exit(ExitCode.ERROR if plan.unreachable else ExitCode.OK)
    if plan_file is None and not auto_approve:
        answer = typer.prompt(
            "\nDo you want to perform these actions? Only 'yes' will be accepted",
            default="",
            show_default=False,
        )
        if answer.strip() != "yes":
            typer.echo("Apply cancelled; nothing was done.")
            raise typer.Exit(ExitCode.ERROR)
    options = ApplyOptions(
        allow_destroy=allow_destroy,
        lock_timeout=lock_timeout,
        timeout=timeout,
        parallelism=parallelism,
        # --allow-dirty: the record must not claim the committed state was applied.
        dirty=bool(revision.dirty_files),
    )
    try:
        report = apply_plan(state, root, plan, options, progress=typer.echo)
    except (ApplyError, PlanError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(render_apply_report(report), nl=False)
    if plan.unreachable:
        typer.echo(render_unplanned(plan), nl=False)
        raise typer.Exit(ExitCode.ERROR)
    raise typer.Exit(ExitCode.OK if report.converged else ExitCode.ERROR)
