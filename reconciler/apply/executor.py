"""Run a plan: lock every node touched, check the plan is still current, run it in order, record it.

Safety comes from three things, in this order:
1. Locks: every node an action runs on is locked (advisory lock, held by one
   connection per node for the whole apply), so two applies never interleave.
2. Staleness: after locking, the touched nodes are read again; if any node's
   catalog fingerprint differs from the plan's, nothing is done.
3. Idempotent actions in plan order: each action is safe to repeat, so an
   apply killed at any point is completed by the next run, which plans again
   from what is live.
The library never prints: progress goes to a callback the CLI provides.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import psycopg

from reconciler import db
from reconciler.actions import Action
from reconciler.apply import locks
from reconciler.apply import log as apply_log
from reconciler.engines import engine_for
from reconciler.errors import ApplyError, ConnectError
from reconciler.model import DesiredState
from reconciler.plan import Plan
from reconciler.planner import compute_plan
from reconciler.secrets import redact

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ApplyOptions:
    allow_destroy: bool = False
    lock_timeout: float | None = None
    timeout: float = 10.0
    parallelism: int = 32
    # The desired-state directory has uncommitted changes (--allow-dirty):
    # the apply record must not claim the committed state was applied.
    dirty: bool = False


class Status(StrEnum):
    """What became of one planned action in this apply."""

    DONE = "done"
    FAILED = "failed"
    NOT_ATTEMPTED = "not attempted"  # an earlier action failed
    HELD_BACK = "held back"  # destructive, and no --allow-destroy


@dataclass
class Outcome:
    action: Action
    status: Status
    detail: str = ""


@dataclass
class ApplyReport:
    outcomes: list[Outcome] = field(default_factory=list)
    remaining: list[Action] = field(default_factory=list)
    unreachable_after: dict[str, str] = field(default_factory=dict)
    failed: bool = False

    @property
    def converged(self) -> bool:
        held = {o.action.model_dump_json() for o in self.outcomes if o.status is Status.HELD_BACK}
        return (
            not self.failed
            and not self.unreachable_after
            and all(a.model_dump_json() in held for a in self.remaining)
        )


class _Sessions:
    """One connection per node: locked ones for touched nodes, plain ones for providers."""

    def __init__(self, state: DesiredState, timeout: float, application_name: str) -> None:
        self.state = state
        self.timeout = timeout
        self.application_name = application_name
        self.conns: dict[str, psycopg.Connection] = {}

    def connect(self, node: str) -> psycopg.Connection:
        """The node's session (opened once); ConnectError when it cannot be had.

        db.connect gives it keepalives and tcp_user_timeout (a link that dies
        mid-apply ends the session instead of hanging it) and, since apply
        writes, triggers that fire (session_replication_role = origin). The
        application_name names this apply to whoever waits for its lock.
        """
        if node not in self.conns:
            self.conns[node] = db.connect(
                self.state.nodes[node].connect_dsn,
                timeout=self.timeout,
                application_name=self.application_name,
                writes=True,
            )
        return self.conns[node]

    def provider(self, node: str) -> psycopg.Connection | None:
        """A connection to another node (e.g. a provider whose slot must go), or None if it is down."""
        if node not in self.state.nodes:
            return None
        try:
            return self.connect(node)
        except ConnectError:
            return None

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()  # also releases the session's advisory locks
        self.conns.clear()


def _connect_error(node: str, dsn: str, exc: ConnectError) -> ApplyError:
    # ConnectError's message is already one line without secrets (db.short_reason).
    return ApplyError(f"node {node}: cannot connect ({redact(dsn)}): {exc}; nothing was done")


def _record(action: Action, status: str) -> dict[str, str]:
    # status: a Status, or "planned" in the record written before anything runs.
    return {
        "kind": action.kind,
        "subject": action.subject,
        "description": action.describe(),
        "status": status,
    }


def apply_plan(
    state: DesiredState,
    directory: Path,
    plan: Plan,
    options: ApplyOptions,
    progress: Progress,
) -> ApplyReport:
    """Run `plan` against the live network; raise ApplyError before touching anything if unsafe."""
    if plan.blockers:
        raise ApplyError("the plan has blocking errors; nothing was done (run `reconcile plan`)")
    runnable = plan.runnable(options.allow_destroy)
    held = plan.held_back(options.allow_destroy)
    report = ApplyReport(outcomes=[Outcome(a, Status.HELD_BACK) for a in held])
    if not runnable:
        return report
    touched = sorted({a.node for a in runnable})
    user = getpass.getuser()
    host = socket.gethostname()
    sessions = _Sessions(state, options.timeout, f"reconcile apply {user}@{host} pid {os.getpid()}"[:63])
    try:
        for node in touched:
            try:
                conn = sessions.connect(node)
            except ConnectError as exc:
                raise _connect_error(node, state.nodes[node].connect_dsn, exc) from exc
            try:
                locks.acquire(conn, node, options.lock_timeout)
            except psycopg.Error as exc:
                raise ApplyError(f"node {node}: cannot take the apply lock: {exc}; nothing was done") from exc
        _check_fresh(state, directory, plan, touched, options)
        _run(state, plan, runnable, sessions, report, progress, user, host, options.dirty)
    finally:
        sessions.close()
    _verify(state, directory, touched, options, report)
    return report


def _check_fresh(
    state: DesiredState, directory: Path, plan: Plan, touched: Sequence[str], options: ApplyOptions
) -> None:
    """Refuse when a touched node changed since the plan was computed (read under the locks)."""
    now = compute_plan(
        state, directory, nodes=touched, parallelism=options.parallelism, timeout=options.timeout
    )
    silent = sorted(set(now.plan.unreachable) & set(touched))
    if silent:
        raise ApplyError(
            "nodes stopped answering before apply: "
            + "; ".join(f"{n}: {now.plan.unreachable[n]}" for n in silent)
            + "; nothing was done"
        )
    changed = [n for n in touched if plan.fingerprints.get(n) != now.plan.fingerprints.get(n)]
    if changed:
        raise ApplyError(
            "live state changed since the plan was made on node(s) "
            + ", ".join(changed)
            + "; nothing was done: run `reconcile plan` again"
        )


def _run(
    state: DesiredState,
    plan: Plan,
    runnable: Sequence[Action],
    sessions: _Sessions,
    report: ApplyReport,
    progress: Progress,
    user: str,
    host: str,
    dirty: bool,
) -> None:
    records = _start_records(plan, runnable, sessions, progress, user, host, dirty)
    per_node: dict[str, list[dict[str, str]]] = {}
    failure: str | None = None
    not_attempted: Sequence[Action] = ()
    for index, action in enumerate(runnable):
        progress(f"{action.node}: {action.symbol} {action.describe()} ...")
        try:
            detail = str(
                engine_for(state.engine).execute(
                    sessions.connect(action.node), action, provider_conn=sessions.provider
                )
            )
        except (ApplyError, ConnectError, psycopg.Error) as exc:
            failure = f"{action.node}: {action.symbol} {action.describe()}: {exc}"
            report.outcomes.append(Outcome(action, Status.FAILED, str(exc)))
            per_node.setdefault(action.node, []).append(_record(action, Status.FAILED))
            progress(f"{action.node}:   failed: {exc}")
            not_attempted = runnable[index + 1 :]
            break
        report.outcomes.append(Outcome(action, Status.DONE, str(detail)))
        per_node.setdefault(action.node, []).append(_record(action, Status.DONE))
        progress(f"{action.node}:   {detail}")
    for action in not_attempted:
        report.outcomes.append(Outcome(action, Status.NOT_ATTEMPTED))
        per_node.setdefault(action.node, []).append(_record(action, Status.NOT_ATTEMPTED))
    if failure is not None:
        report.failed = True
    for node, record in sorted(records.items()):
        actions = per_node.get(node, [])
        try:
            apply_log.finish(
                sessions.connect(node),
                record,
                result=apply_log.Result.FAILED
                if any(a["status"] != Status.DONE for a in actions)
                else apply_log.Result.OK,
                actions=actions,
                message=failure,
            )
        except psycopg.Error as exc:
            progress(f"{node}: warning: could not complete the apply record: {exc}")


def _start_records(
    plan: Plan,
    runnable: Sequence[Action],
    sessions: _Sessions,
    progress: Progress,
    user: str,
    host: str,
    dirty: bool,
) -> dict[str, int]:
    """A 'running' record on every node to be touched, before anything changes there."""
    planned: dict[str, list[dict[str, str]]] = {}
    for action in runnable:
        planned.setdefault(action.node, []).append(_record(action, "planned"))
    records: dict[str, int] = {}
    for node, actions in sorted(planned.items()):
        try:
            records[node] = apply_log.start(
                sessions.connect(node),
                os_user=user,
                client_host=host,
                tool_version=plan.tool_version,
                desired_commit=plan.desired_commit,
                dirty=dirty,
                actions=actions,
            )
        except psycopg.Error as exc:
            progress(f"{node}: warning: could not write the apply record: {exc}")
    return records


def _verify(
    state: DesiredState, directory: Path, touched: Sequence[str], options: ApplyOptions, report: ApplyReport
) -> None:
    """Re-read what was touched: whatever still differs is reported, not guessed."""
    after = compute_plan(
        state, directory, nodes=touched, parallelism=options.parallelism, timeout=options.timeout
    )
    report.remaining = list(after.plan.actions)
    report.unreachable_after = dict(after.plan.unreachable)
