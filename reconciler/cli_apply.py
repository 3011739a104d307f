"""`reconcile apply`: show the plan, confirm, converge the live network, report what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler import gitops
from reconciler.apply import ApplyOptions, ApplyReport, apply_plan
from reconciler.cli_common import DirOption, load_state_or_exit, resolve_dir
from reconciler.cli_plan import NodeOption, ParallelismOption, TimeoutOption
from reconciler.errors import ApplyError, PlanError
from reconciler.model import DesiredState
from reconciler.plan import Plan, foreign_dsns, load_plan
from reconciler.planner import compute_plan
from reconciler.render.text import render_text


def _report(report: ApplyReport) -> None:
    done = [o for o in report.outcomes if o.status == "done"]
    failed = [o for o in report.outcomes if o.status == "failed"]
    skipped = [o for o in report.outcomes if o.status == "not attempted"]
    held = [o for o in report.outcomes if o.status == "held back"]
    typer.echo("")
    typer.echo(
        f"Apply: {len(done)} done, {len(failed)} failed, {len(skipped)} not attempted, {len(held)} held back."
    )
    for o in failed:
        typer.echo(f"  failed:        {o.action.node}: {o.action.symbol} {o.action.describe()}: {o.detail}")
    for o in skipped:
        typer.echo(f"  not attempted: {o.action.node}: {o.action.symbol} {o.action.describe()}")
    for o in held:
        typer.echo(
            f"  held back (needs --allow-destroy): {o.action.node}: {o.action.symbol} {o.action.describe()}"
        )
    if report.unreachable_after:
        for node, reason in sorted(report.unreachable_after.items()):
            typer.echo(f"  could not re-read {node}: {reason}")
    if report.converged:
        typer.echo("converged" + (" (except what was held back)" if held else ""))
    else:
        typer.echo("Still different after apply:")
        for action in report.remaining:
            typer.echo(f"  {action.node}: {action.symbol} {action.describe()}")
        if report.failed:
            typer.echo(
                "Rerun `reconcile apply` once the cause is fixed: it converges from where this stopped."
            )


def _check_saved_plan(plan: Plan, state: DesiredState, commit: str | None) -> None:
    """A saved plan runs only against the desired state it was computed from."""
    undeclared = sorted({a.node for a in plan.actions} - set(state.nodes))
    if undeclared:
        raise PlanError(f"the saved plan acts on node(s) no longer declared: {', '.join(undeclared)}")
    made_from = (plan.desired_commit or "").split(" ")[0]
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
        typer.echo(
            "error: the desired-state repository has uncommitted changes: "
            + ", ".join(revision.dirty_files)
            + "; commit them or pass --allow-dirty. Nothing was done.",
            err=True,
        )
        raise typer.Exit(1)
    try:
        if plan_file is not None:
            plan: Plan = load_plan(plan_file)
            _check_saved_plan(plan, state, revision.commit)
        else:
            plan = compute_plan(state, root, nodes=node, parallelism=parallelism, timeout=timeout).plan
    except PlanError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if revision.dirty_files:
        # --allow-dirty: the record must not claim the committed state was applied.
        plan = plan.model_copy(update={"desired_commit": f"{revision.commit} (dirty)"})
    typer.echo(render_text(plan), nl=False)
    if plan.blockers:
        typer.echo("error: the plan has blocking errors; nothing was done.", err=True)
        raise typer.Exit(1)
    if not plan.actions:
        raise typer.Exit(1 if plan.unreachable else 0)
    if plan_file is None and not auto_approve:
        answer = typer.prompt(
            "\nDo you want to perform these actions? Only 'yes' will be accepted",
            default="",
            show_default=False,
        )
        if answer.strip() != "yes":
            typer.echo("Apply cancelled; nothing was done.")
            raise typer.Exit(1)
    options = ApplyOptions(
        allow_destroy=allow_destroy, lock_timeout=lock_timeout, timeout=timeout, parallelism=parallelism
    )
    try:
        report = apply_plan(state, root, plan, options, progress=typer.echo)
    except (ApplyError, PlanError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    _report(report)
    if plan.unreachable:
        typer.echo(
            "Not converged: unreachable node(s) were not planned: " + ", ".join(sorted(plan.unreachable))
        )
        raise typer.Exit(1)
    raise typer.Exit(0 if report.converged else 1)
