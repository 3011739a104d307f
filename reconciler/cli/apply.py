"""`reconcile apply`: show the plan, confirm, converge the live network, report what happened."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from reconciler import gitops
from reconciler.actions import RunMigration
from reconciler.apply import ApplyOptions, apply_plan, settle_records
from reconciler.apply import log as apply_log
from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import (
    DirOption,
    NodeOption,
    TimeoutOption,
    fail,
    load_state_or_exit,
    resolve_dir,
)
from reconciler.cli.progress import ApplyProgress, echo_text
from reconciler.errors import ApplyError, PlanError
from reconciler.model import DesiredState
from reconciler.plan import Plan, foreign_dsns, load_plan
from reconciler.planner import compute_plan
from reconciler.render.apply import render_apply_report, render_unplanned
from reconciler.render.plan_text import render_text


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT and SIGTERM set the event (no new action starts) instead of killing the process."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second one: stop waiting for the records and the re-read
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield stop  # only the main thread may set handlers (an embedding caller keeps its own)
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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
    # A plan file is data: the SQL a migration runs must be the desired state's, byte for byte.
    declared = set(state.migrations)
    runs = [a.migration for a in plan.actions if isinstance(a, RunMigration)]
    odd = sorted({m.name for m in runs if m not in declared})
    if odd:
        raise PlanError(
            f"the saved plan runs migration(s) {', '.join(odd)} that differ from the desired state's"
            " migrations/ files; make a new plan"
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
    allow_no_git: Annotated[
        bool,
        typer.Option(
            "--allow-no-git",
            help="Apply from a directory in no git repository without the warning (the record says so).",
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
    parallelism: Annotated[
        int,
        typer.Option(
            "--parallelism", min=1, help="Nodes read, and changed, at the same time (one session per node)."
        ),
    ] = 32,
    timeout: TimeoutOption = 10.0,
    statement_timeout: Annotated[
        float,
        typer.Option(
            "--statement-timeout",
            min=1,
            help="Deadline of each action, in seconds, on the server and on the client.",
        ),
    ] = 60.0,
    require_all: Annotated[
        bool,
        typer.Option("--require-all", help="Refuse, doing nothing, when a node to change does not answer."),
    ] = False,
    no_repair: Annotated[
        bool,
        typer.Option(
            "--no-repair",
            help="Do not verify and repair the rows that [needs verify] actions may leave wrong.",
        ),
    ] = False,
) -> None:
    """Converge the live network: lock, re-check, run the plan's dependency graph concurrently, record it,
    then verify and repair the rows the changes may have left wrong.

    Exit codes: 0 done (converged: catalogs and rows), 1 failed or refused
    (what was done and what was not is printed; rerunning converges), 130
    interrupted (SIGINT/SIGTERM: no new action started; rerunning converges).
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
    no_git = gitops.repository(root) is None
    if no_git and not allow_no_git:
        typer.echo(
            f"warning: {root} is in no git repository: nothing records which revision is applied, and"
            f" the apply record will say '{apply_log.NOT_IN_GIT}'. Keep the desired state in git, or pass"
            " --allow-no-git to apply without this warning.",
            err=True,
        )
    try:
        if plan_file is not None:
            plan: Plan = load_plan(plan_file)
            _check_saved_plan(plan, state, revision.commit)
        else:
            plan = compute_plan(state, root, nodes=node, parallelism=parallelism, timeout=timeout).plan
    except PlanError as exc:
        raise fail(str(exc)) from exc
    echo_text(render_text(plan))
    if any(b.provider is None for b in plan.blockers):
        raise fail("the plan has blocking errors; nothing was done.")
    # Blockers of single edges hold back those edges' actions only (apply_plan reports them).
    if plan.unreachable and not set(plan.nodes) - set(plan.unreachable):
        raise fail("no node answered, so nothing can be applied; nothing was done.")
    if not plan.actions and not plan.pending_rows:
        settled = settle_records(
            state,
            sorted(plan.unsettled),
            plan,
            ApplyOptions(
                timeout=timeout, parallelism=parallelism, dirty=bool(revision.dirty_files), no_git=no_git
            ),
        )
        if settled:
            typer.echo(f"Recorded an ok apply on {', '.join(settled)} (their last apply had not completed).")
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
        statement_timeout=statement_timeout,
        parallelism=parallelism,
        require_all=require_all,
        repair=not no_repair,
        # --allow-dirty: the record must not claim the committed state was applied.
        dirty=bool(revision.dirty_files),
        no_git=no_git,
    )
    if plan.unreachable:
        # Said first, in one line: the rest is applied all the same.
        typer.echo(
            f"Not reachable, so not planned: {', '.join(sorted(plan.unreachable))}; applying the rest."
        )
    try:
        with _stop_on_signals() as stop, ApplyProgress(plan, len(plan.runnable(allow_destroy))) as progress:
            report = apply_plan(state, root, plan, options, progress=progress, stop=stop)
    except (ApplyError, PlanError) as exc:
        raise fail(str(exc)) from exc
    except KeyboardInterrupt:
        typer.echo(
            "\nInterrupted twice: stopped once the running actions ended; the records read `interrupted`."
            " Rerun `reconcile apply`: it converges from here.",
            err=True,
        )
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    echo_text(render_apply_report(report))
    if report.interrupted:
        raise typer.Exit(ExitCode.INTERRUPTED)
    if plan.unreachable:
        typer.echo(render_unplanned(plan), nl=False)
        raise typer.Exit(ExitCode.ERROR)
    raise typer.Exit(ExitCode.OK if report.done_as_asked else ExitCode.ERROR)
