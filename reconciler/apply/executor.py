"""Run a plan: lock every node touched, check the plan is still current, walk it concurrently, record it,
then verify and repair the rows its changes may have left behind.

Safety comes from these, in this order:
1. Locks: every node an action runs on is locked (advisory lock, held by one
   session per node for the whole apply), so two applies never interleave,
   and that session runs the node's actions one after another, in plan order.
2. Staleness: after locking, the touched nodes are read again; if any node's
   catalog fingerprint differs from the plan's, nothing is done.
3. The dependency graph (graph.py, from the plan's phase table and edges):
   actions on different nodes run concurrently, an action starts only after
   everything it waits for is done, and a failure stops only what waits for it.
4. Deadlines: every statement has one on the server (statement_timeout) and
   on the client (a watchdog that shuts the socket), so a link that
   black-holes costs its node at most the deadline.
5. Idempotent actions: an apply killed or interrupted at any point is
   completed by the next run, which plans again from what is live.
The library never prints: progress goes to a callback the CLI provides.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import psycopg

from reconciler import db, pending_rows
from reconciler.actions import Action, CreateSubscription, ReplaceSubscription
from reconciler.apply import locks
from reconciler.apply import log as apply_log
from reconciler.apply.graph import dependencies, provider_of
from reconciler.apply.rows import RowScope, owed, row_scope
from reconciler.diff.network import SLOT_MISSING
from reconciler.engines import engine_for
from reconciler.engines.migrations import CONTEXT as migration_context
from reconciler.errors import ApplyError, ConnectError
from reconciler.model import DesiredState
from reconciler.moves import moves
from reconciler.plan import Plan
from reconciler.planner import compute_plan
from reconciler.secrets import redact
from reconciler.verify import run as verify_run

# The client's deadline is the server's plus this: the server's cancel (a
# clear error) normally comes first; the watchdog is for a link that carries
# nothing at all, not even the cancel's answer.
WATCHDOG_MARGIN = 5.0
# After a deadline shut an action's provider connections, how long before its own session goes too.
SESSION_GRACE = 2.0
# How often the walk looks for an interrupt while actions run.
POLL_SECONDS = 0.2
# At most one progress line per table this often while a repair copies rows.
PROGRESS_SECONDS = 2.0
# How long a re-read waits for the slots of subscriptions made by this apply (see _reread).
SLOT_START_WAIT = 15.0


class Status(StrEnum):
    """What became of one planned action in this apply."""

    DONE = "done"
    FAILED = "failed"
    WAITING = "waiting"  # something it waits for failed or could not run
    INTERRUPTED = "interrupted"  # not started: the apply was interrupted
    HELD_BACK = "held back"  # destructive, and no --allow-destroy
    BLOCKED = "blocked"  # an action of an edge a plan blocker names (e.g. a column the subscriber lacks)


@dataclass
class Outcome:
    action: Action
    status: Status
    detail: str = ""
    # WAITING: the node whose failure it waits on.
    waiting_on: str | None = None
    # Monotonic clock, for the order of actions (never printed as such).
    started: float | None = None
    ended: float | None = None


@dataclass(frozen=True)
class Event:
    """A progress event: an action starts or ends, or apply says something about a node."""

    node: str
    text: str
    action: Action | None = None
    status: Status | None = None  # None: the action starts (or a note)

    @property
    def line(self) -> str:
        """The event as one plain line (an action's start ends with ' ...')."""
        if self.action is not None and self.status is None:
            return f"{self.node}: {self.action.symbol} {self.action.describe()} ..."
        return f"{self.node}:   {self.text}"


Progress = Callable[[Event], None]


@dataclass(frozen=True)
class ApplyOptions:
    allow_destroy: bool = False
    lock_timeout: float | None = None
    timeout: float = 10.0  # connecting, seconds
    statement_timeout: float = 60.0  # each action, seconds
    parallelism: int = 32
    require_all: bool = False  # refuse when a node to change does not answer
    repair: bool = True  # verify and repair the rows the actions may have left behind
    # The desired-state directory has uncommitted changes (--allow-dirty):
    # the apply record must not claim the committed state was applied.
    dirty: bool = False
    # The desired-state directory is in no git repository: the record says so
    # (apply_log.NOT_IN_GIT) rather than leaving the commit empty.
    no_git: bool = False


@dataclass
class ApplyReport:
    outcomes: list[Outcome] = field(default_factory=list)
    remaining: list[Action] = field(default_factory=list)
    unreachable_at_start: dict[str, str] = field(default_factory=dict)
    unreachable_after: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    rows: RowScope = field(default_factory=RowScope)
    verify: verify_run.VerifyReport | None = None
    rows_skipped: str | None = None  # why the rows were not verified, when they should have been

    @property
    def done_actions(self) -> list[Action]:
        return [o.action for o in self.outcomes if o.status is Status.DONE]

    @property
    def failed(self) -> bool:
        return any(
            o.status in (Status.FAILED, Status.WAITING, Status.INTERRUPTED, Status.BLOCKED)
            for o in self.outcomes
        )

    @property
    def catalogs_converged(self) -> bool:
        held = {o.action.model_dump_json() for o in self.outcomes if o.status is Status.HELD_BACK}
        return (
            not self.failed
            and not self.unreachable_after
            and all(a.model_dump_json() in held for a in self.remaining)
        )

    @property
    def rows_converged(self) -> bool:
        """The rows the actions may have left wrong were verified and are right (or there were none)."""
        if not self.rows.tables:
            return True
        if self.verify is None:
            return False
        return not self.verify.unreachable and all(rows_whole(t) for t in self.verify.tables)

    @property
    def converged(self) -> bool:
        """Catalogs and rows: what the desired state says, live."""
        return self.catalogs_converged and self.rows_converged

    @property
    def done_as_asked(self) -> bool:
        """Converged, or converged catalogs with the rows check left out on request (--no-repair)."""
        return self.catalogs_converged and (self.rows_converged or self.rows_skipped is not None)


class _Sessions:
    """One locked session per touched node, and per node its own connections to providers.

    A node's actions run one at a time, so its session and its provider
    connections are never used by two threads at once.
    """

    def __init__(
        self,
        state: DesiredState,
        options: ApplyOptions,
        application_name: str,
        context: Mapping[str, str | None] | None = None,
    ) -> None:
        self.state = state
        self.options = options
        self.application_name = application_name
        # Session settings a migration's record reads (engines/migrations.CONTEXT).
        self.context = dict(context or {})
        self.conns: dict[str, psycopg.Connection] = {}
        self.providers: dict[tuple[str, str], psycopg.Connection | None] = {}
        self.guard = threading.Lock()

    def _open(self, node: str) -> psycopg.Connection:
        # db.connect: keepalives, tcp_user_timeout, triggers that fire
        # (writes=True), the server-side statement deadline, and an open
        # transaction of a vanished client ended; the application_name names
        # this apply to whoever waits for its lock.
        return db.connect(
            self.state.nodes[node].connect_dsn,
            timeout=self.options.timeout,
            application_name=self.application_name,
            writes=True,
            statement_timeout=self.options.statement_timeout,
            idle_in_transaction_timeout=self.options.statement_timeout,
        )

    def lock(self, node: str) -> psycopg.Connection:
        """Open the node's session and take its apply lock; ConnectError or ApplyError."""
        conn = self._open(node)
        try:
            locks.acquire(conn, node, self.options.lock_timeout)
            for name, value in sorted(self.context.items()):
                conn.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value or ""))
        except psycopg.Error as exc:
            conn.close()
            raise ApplyError(f"node {node}: cannot take the apply lock: {exc}; nothing was done") from exc
        except ApplyError:
            conn.close()
            raise
        with self.guard:
            self.conns[node] = conn
        return conn

    def session(self, node: str) -> psycopg.Connection:
        return self.conns[node]

    def provider(self, node: str, provider: str) -> psycopg.Connection | None:
        """`node`'s own connection to another node (e.g. a provider whose slot must go); None if down."""
        key = (node, provider)
        cached = self.providers.get(key)
        if cached is not None and (cached.closed or cached.broken):
            del self.providers[key]  # shut by a deadline: open a new one
        if key not in self.providers:
            conn: psycopg.Connection | None = None
            if provider in self.state.nodes:
                try:
                    conn = self._open(provider)
                except ConnectError:
                    conn = None
            self.providers[key] = conn
        return self.providers[key]

    def close(self) -> None:
        with self.guard:
            for conn in [*self.conns.values(), *self.providers.values()]:
                if conn is not None:
                    conn.close()  # also releases the session's advisory locks
            self.conns.clear()
            self.providers.clear()


def rows_whole(t: verify_run.TableReport) -> bool:
    """The subscriber holds every row its providers pass, as they hold it (stale rows aside)."""
    final = t.final
    if t.status is verify_run.Status.CONSISTENT:
        return True
    return final is not None and not any(final.missing.values()) and not any(final.differing.values())


def stale_kept(t: verify_run.TableReport) -> int:
    """Rows the subscriber holds that no provider passes, left by apply's repair (it never deletes)."""
    return len(t.final.stale) if t.final is not None else 0


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
    stop: threading.Event | None = None,
) -> ApplyReport:
    """Run `plan` against the live network; raise ApplyError before touching anything if unsafe.

    `stop`, once set (the CLI sets it on SIGINT/SIGTERM), starts no new
    action; the ones running end within their deadline.
    """
    if any(b.provider is None for b in plan.blockers):
        raise ApplyError("the plan has blocking errors; nothing was done (run `reconcile plan`)")
    stop = stop if stop is not None else threading.Event()
    # A blocker of one edge holds back that edge's actions only; the rest is applied.
    edge_blockers: dict[tuple[str, str], str] = {}
    for b in plan.sorted_blockers():
        if b.provider is not None:
            edge_blockers.setdefault((b.node, b.provider), b.message)
    runnable = plan.runnable(options.allow_destroy)
    why = {
        id(a): edge_blockers[(a.node, provider_of(a) or "")]
        for a in runnable
        if (a.node, provider_of(a) or "") in edge_blockers
    }
    with_move = _with_their_moves(plan, runnable, why)
    why.update({k: reason for k, (reason, status) in with_move.items() if status is Status.BLOCKED})
    blocked = [a for a in runnable if id(a) in why]
    held = [
        *plan.held_back(options.allow_destroy),
        *(a for a in runnable if id(a) in with_move and id(a) not in why),
    ]
    runnable = tuple(a for a in runnable if id(a) not in why and id(a) not in with_move)
    report = ApplyReport(
        outcomes=[Outcome(a, Status.HELD_BACK, with_move.get(id(a), ("", Status.HELD_BACK))[0]) for a in held]
        + [Outcome(a, Status.BLOCKED, why[id(a)]) for a in blocked]
    )
    if not runnable and not plan.pending_rows:
        return report
    # Subscribers that still owe rows are locked too: their repair runs under the locks.
    touched = sorted({a.node for a in runnable} | set(plan.pending_rows))
    user = getpass.getuser()
    host = socket.gethostname()
    commit = plan.desired_commit
    if commit is not None and options.dirty:
        commit += " (dirty)"
    if commit is None and options.no_git:
        commit = apply_log.NOT_IN_GIT
    sessions = _Sessions(
        state,
        options,
        f"reconcile apply {user}@{host} pid {os.getpid()}"[:63],
        dict(zip(migration_context, (user, plan.tool_version, commit), strict=True)),
    )
    try:
        _lock_all(state, touched, sessions, options, report)
        locked = [n for n in touched if n not in report.unreachable_at_start]
        report.unreachable_at_start.update(_check_fresh(state, directory, plan, locked, options))
        for node, reason in sorted(report.unreachable_at_start.items()):
            progress(Event(node, f"unreachable, its actions wait: {reason}"))
        _run(state, plan, runnable, sessions, report, progress, stop, user, host, options)
        report.interrupted = stop.is_set()
        if report.interrupted:
            return report
        # Still under the locks: no other apply (or skip) writes while the
        # result is read back and the rows are repaired.
        _reread(state, directory, touched, options, report)
        _converge_rows(state, plan, report, options, progress)
    finally:
        sessions.close()
    # Nodes this plan does not change at all, whose last apply had not completed.
    untouched = set(plan.unsettled) - {a.node for a in plan.actions}
    settle_records(state, sorted(untouched), plan, options)
    return report


def _move_groups(plan: Plan) -> list[tuple[str, list[Action]]]:
    """Each move's steps; moves that share a step (the tier above's replace) as one group."""
    groups: list[tuple[list[str], set[int]]] = []
    for move in moves(plan.actions):
        names, steps = [move.describe()], set(move.steps)
        for other in [g for g in groups if g[1] & steps]:
            groups.remove(other)
            names, steps = other[0] + names, other[1] | steps
        groups.append((names, steps))
    return [("; ".join(names), [plan.actions[i] for i in sorted(steps)]) for names, steps in groups]


def _with_their_moves(
    plan: Plan, runnable: Sequence[Action], why: dict[int, str]
) -> dict[int, tuple[str, Status]]:
    """The other steps of a move one of whose steps cannot run: blocked with a blocked step, held
    back with a held-back one (a drop without --allow-destroy).

    A move is one operation: its old path going alone would cut the node off
    from every tier above, its new path alone would carry its rows up twice.
    """
    able = {id(a) for a in runnable}
    more: dict[int, tuple[str, Status]] = {}
    for name, steps in _move_groups(plan):
        stuck = [a for a in steps if id(a) not in able or id(a) in why]
        if not stuck:
            continue
        first = stuck[0]
        status = Status.BLOCKED if id(first) in why else Status.HELD_BACK
        reason = f"waits with {name}: its step on {first.node} ({first.subject}) cannot run"
        more.update({id(a): (reason, status) for a in steps if id(a) in able and id(a) not in why})
    return more


def _moves_cut_off(plan: Plan, unreachable: Mapping[str, str]) -> dict[int, tuple[str, str]]:
    """Steps of a move with a step on a node that did not answer at the start: they wait with it."""
    held: dict[int, tuple[str, str]] = {}
    for name, steps in _move_groups(plan):
        silent = sorted({a.node for a in steps if a.node in unreachable})
        if silent:
            reason = f"waits with {name}: {silent[0]} did not answer"
            held.update({id(a): (reason, silent[0]) for a in steps if a.node not in unreachable})
    return held


def settle_records(state: DesiredState, nodes: Sequence[str], plan: Plan, options: ApplyOptions) -> list[str]:
    """On each node that needs no change but whose newest apply record is not ok, record an ok apply.

    An apply that failed, was interrupted or was killed leaves its record
    behind, and `status` warns about it; once a later apply finds nothing to
    change there, that warning is over. Returns the nodes recorded.
    """

    def settle(node: str) -> bool:
        try:
            conn = _short_session(state, node, options)
        except ConnectError:
            return False
        with conn, db.deadline(options.statement_timeout + WATCHDOG_MARGIN, lambda: [conn]):
            try:
                last = apply_log.last(conn)
                if last is None or last.result == apply_log.Result.OK:
                    return False
                locks.acquire(conn, node, None)  # another apply is on it: leave its record alone
                record = apply_log.start(
                    conn,
                    os_user=getpass.getuser(),
                    client_host=socket.gethostname(),
                    tool_version=plan.tool_version,
                    desired_commit=plan.desired_commit,
                    dirty=options.dirty,
                    actions=[],
                    no_git=options.no_git,
                )
                apply_log.finish(
                    conn,
                    record,
                    result=apply_log.Result.OK,
                    actions=[],
                    message=f"nothing to change (after a {last.result} apply)",
                )
            except (psycopg.Error, ApplyError):
                return False
        return True

    done = db.fan_out(list(nodes), settle, options.parallelism, name="reconcile-settle")
    return [n for n, ok in zip(nodes, done, strict=True) if ok]


def _lock_all(
    state: DesiredState,
    touched: Sequence[str],
    sessions: _Sessions,
    options: ApplyOptions,
    report: ApplyReport,
) -> None:
    """Open and lock every touched node at once; nodes that do not answer are noted, a held lock refuses."""

    def lock(node: str) -> str | ApplyError | None:
        try:
            sessions.lock(node)
        except ConnectError as exc:
            # ConnectError's message is already one line without secrets (db.short_reason).
            return f"cannot connect ({redact(state.nodes[node].connect_dsn)}): {exc}"
        except ApplyError as exc:
            return exc
        return None

    results = db.fan_out(list(touched), lock, options.parallelism, name="reconcile-lock")
    refusals = [r for r in results if isinstance(r, ApplyError)]
    if refusals:
        raise refusals[0]
    report.unreachable_at_start = {n: r for n, r in zip(touched, results, strict=True) if isinstance(r, str)}
    if report.unreachable_at_start and options.require_all:
        raise ApplyError(
            "node(s) to change do not answer: "
            + "; ".join(f"{n}: {r}" for n, r in sorted(report.unreachable_at_start.items()))
            + "; nothing was done (--require-all)"
        )
    if len(report.unreachable_at_start) == len(touched):
        raise ApplyError(
            "no node to change answers: "
            + "; ".join(f"{n}: {r}" for n, r in sorted(report.unreachable_at_start.items()))
            + "; nothing was done"
        )


def _check_fresh(
    state: DesiredState, directory: Path, plan: Plan, locked: Sequence[str], options: ApplyOptions
) -> dict[str, str]:
    """Refuse when a locked node changed since the plan was computed (read under the locks).

    Returns the nodes that could not be read again (they are treated as
    unreachable: their actions wait, the rest goes on).
    """
    now = compute_plan(
        state, directory, nodes=locked, parallelism=options.parallelism, timeout=options.timeout
    )
    silent = {n: f"stopped answering: {now.plan.unreachable[n]}" for n in locked if n in now.plan.unreachable}
    changed = [
        n for n in locked if n not in silent and plan.fingerprints.get(n) != now.plan.fingerprints.get(n)
    ]
    if changed:
        raise ApplyError(
            "live state changed since the plan was made on node(s) "
            + ", ".join(changed)
            + "; nothing was done: run `reconcile plan` again"
        )
    if silent and options.require_all:
        raise ApplyError(
            "node(s) to change stopped answering: "
            + "; ".join(f"{n}: {r}" for n, r in sorted(silent.items()))
            + "; nothing was done (--require-all)"
        )
    return silent


def _run(
    state: DesiredState,
    plan: Plan,
    runnable: Sequence[Action],
    sessions: _Sessions,
    report: ApplyReport,
    progress: Progress,
    stop: threading.Event,
    user: str,
    host: str,
    options: ApplyOptions,
) -> None:
    records = _start_records(
        plan, runnable, sessions, progress, user, host, options, report.unreachable_at_start
    )
    engine = engine_for(state.engine)
    deadline = options.statement_timeout + WATCHDOG_MARGIN
    held_with_moves = _moves_cut_off(plan, report.unreachable_at_start)

    def run_one(action: Action) -> Outcome:
        if action.node in report.unreachable_at_start:
            return Outcome(action, Status.FAILED, f"unreachable: {report.unreachable_at_start[action.node]}")
        conn = sessions.session(action.node)
        if conn.closed or conn.broken:
            # An earlier action's deadline closed it: said once, on that action.
            return Outcome(
                action, Status.WAITING, "not run: the node's session was lost", waiting_on=action.node
            )
        progress(Event(action.node, "", action))
        used: list[psycopg.Connection] = []

        def provider_conn(provider: str) -> psycopg.Connection | None:
            pconn = sessions.provider(action.node, provider)
            if pconn is not None:
                used.append(pconn)
            return pconn

        moving = held_with_moves.get(id(action))
        if moving is not None:
            return Outcome(action, Status.WAITING, moving[0], waiting_on=moving[1])
        started = time.monotonic()
        unrecorded = _record_owed(state, action, conn, options)
        if unrecorded is not None:
            outcome = Outcome(action, Status.FAILED, unrecorded, started=started, ended=time.monotonic())
            progress(Event(action.node, f"failed: {unrecorded}", action, Status.FAILED))
            return outcome
        # Past the deadline the provider connections it waits on are shut
        # first; the node's own session (and its lock) only if that did not
        # end the action: a silent provider must not cost the subscriber its session.
        with db.deadline(deadline, lambda: used, then=SESSION_GRACE, last=lambda: [conn]) as expired:
            try:
                detail = str(engine.execute(conn, action, provider_conn=provider_conn))
                status = Status.DONE
            except (ApplyError, ConnectError, psycopg.Error) as exc:
                status = Status.FAILED
                # The report names node and action itself: the reason alone, once.
                detail = (
                    f"no answer within {deadline:g} s (--statement-timeout {options.statement_timeout:g} s):"
                    " the connection was closed; the link may be down"
                    if expired.is_set()
                    else str(exc).removeprefix(f"{action.node}: {action.symbol} {action.describe()}: ")
                )
        outcome = Outcome(action, status, detail, started=started, ended=time.monotonic())
        progress(Event(action.node, detail if status is Status.DONE else f"failed: {detail}", action, status))
        return outcome

    outcomes = _walk(runnable, run_one, options.parallelism, stop)
    report.outcomes.extend(outcomes)
    _finish_records(records, outcomes, sessions, progress, stop, deadline)


def _walk(
    actions: Sequence[Action],
    run_one: Callable[[Action], Outcome],
    parallelism: int,
    stop: threading.Event,
) -> list[Outcome]:
    """Run every action once all it waits for is done, at most `parallelism` at once; one outcome each.

    `run_one` never raises. A failed action's dependents (and theirs) are
    WAITING on its node; once `stop` is set nothing new starts and whatever
    did not start is INTERRUPTED.
    """
    waits = dependencies(actions)
    dependents: list[list[int]] = [[] for _ in actions]
    for index, before in enumerate(waits):
        for other in before:
            dependents[other].append(index)
    pending = [set(w) for w in waits]
    outcomes: list[Outcome | None] = [None] * len(actions)
    ready = [i for i, w in enumerate(waits) if not w]
    running: dict[Future[Outcome], int] = {}
    busy: set[str] = set()

    def block(index: int, node: str) -> None:
        todo = list(dependents[index])
        while todo:
            k = todo.pop()
            if outcomes[k] is None:
                detail = (
                    "not run: an earlier action on this node did not complete"
                    if actions[k].node == node
                    else f"waiting on {node}"
                )
                outcomes[k] = Outcome(actions[k], Status.WAITING, detail, waiting_on=node)
                todo.extend(dependents[k])

    with ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="reconcile-apply") as pool:
        while True:
            if not stop.is_set():
                for index in sorted(ready):
                    node = actions[index].node
                    if len(running) >= parallelism or node in busy or outcomes[index] is not None:
                        continue
                    ready.remove(index)
                    busy.add(node)
                    running[pool.submit(run_one, actions[index])] = index
            if not running:
                break
            try:
                finished, _ = wait(running, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                # Without the CLI's handler: the same as `stop`; running actions end within
                # their deadline. A second one is not waited for.
                if stop.is_set():
                    raise
                stop.set()
                continue
            for future in finished:
                index = running.pop(future)
                busy.discard(actions[index].node)
                outcome = future.result()
                outcomes[index] = outcome
                if outcome.status is Status.DONE:
                    for k in dependents[index]:
                        pending[k].discard(index)
                        if not pending[k] and outcomes[k] is None:
                            ready.append(k)
                else:
                    block(index, actions[index].node)
    return [
        o if o is not None else Outcome(a, Status.INTERRUPTED, "not started: the apply was interrupted")
        for a, o in zip(actions, outcomes, strict=True)
    ]


def _start_records(
    plan: Plan,
    runnable: Sequence[Action],
    sessions: _Sessions,
    progress: Progress,
    user: str,
    host: str,
    options: ApplyOptions,
    silent: Mapping[str, str],
) -> dict[str, int]:
    """A 'running' record on every locked node to be touched, before anything changes there."""
    planned: dict[str, list[dict[str, str]]] = {}
    for action in runnable:
        if action.node in sessions.conns and action.node not in silent:
            planned.setdefault(action.node, []).append(_record(action, "planned"))

    def start(item: tuple[str, list[dict[str, str]]]) -> int | None:
        node, actions = item
        conn = sessions.session(node)
        try:
            with db.deadline(options.statement_timeout + WATCHDOG_MARGIN, lambda: [conn]):
                return apply_log.start(
                    conn,
                    os_user=user,
                    client_host=host,
                    tool_version=plan.tool_version,
                    desired_commit=plan.desired_commit,
                    dirty=options.dirty,
                    actions=actions,
                    no_git=options.no_git,
                )
        except psycopg.Error as exc:
            progress(
                Event(node, f"warning: could not write the apply record: {db.short_reason(str(exc), '')}")
            )
            return None

    items = sorted(planned.items())
    ids = db.fan_out(items, start, options.parallelism, name="reconcile-record")
    return {node: record for (node, _), record in zip(items, ids, strict=True) if record is not None}


def _finish_records(
    records: dict[str, int],
    outcomes: Sequence[Outcome],
    sessions: _Sessions,
    progress: Progress,
    stop: threading.Event,
    seconds: float,
) -> None:
    """Complete each node's record: ok, failed (with its first failure) or interrupted; each bounded."""
    per_node: dict[str, list[Outcome]] = {}
    for o in outcomes:
        per_node.setdefault(o.action.node, []).append(o)

    def finish(node: str) -> None:
        mine = per_node.get(node, [])
        failure = next((o for o in mine if o.status is Status.FAILED), None)
        waiting = next((o for o in mine if o.status is Status.WAITING), None)
        if all(o.status is Status.DONE for o in mine):
            result, message = apply_log.Result.OK, None
        elif failure is not None:
            result = apply_log.Result.FAILED
            message = f"{failure.action.symbol} {failure.action.describe()}: {failure.detail}"
        elif stop.is_set():
            result, message = apply_log.Result.INTERRUPTED, "interrupted: actions not started are listed"
        else:
            result = apply_log.Result.FAILED
            message = waiting.detail if waiting is not None else None
        conn = sessions.session(node)
        if conn.closed or conn.broken:
            # Its record stays `running` and reads `interrupted` once the server lets the lock go.
            progress(Event(node, "warning: the apply record could not be completed: the session was lost"))
            return
        try:
            with db.deadline(seconds, lambda: [conn]):
                apply_log.finish(
                    conn,
                    records[node],
                    result=result,
                    actions=[_record(o.action, o.status) for o in mine],
                    message=message,
                )
        except psycopg.Error as exc:
            progress(
                Event(node, f"warning: could not complete the apply record: {db.short_reason(str(exc), '')}")
            )

    db.fan_out(sorted(records), finish, name="reconcile-record")


def _reread(
    state: DesiredState, directory: Path, touched: Sequence[str], options: ApplyOptions, report: ApplyReport
) -> None:
    """Re-read what was touched: whatever still differs is reported, not guessed.

    pglogical creates a new subscription's slot on its provider when the
    subscription's worker starts, moments after create_subscription returned:
    a re-read that only finds such slots missing is made again, for at most
    SLOT_START_WAIT seconds, before it is believed.
    """
    made = {
        name
        for o in report.outcomes
        if o.status is Status.DONE and (name := _created_subscription(o.action)) is not None
    }
    deadline = time.monotonic() + SLOT_START_WAIT
    while True:
        after = compute_plan(
            state, directory, nodes=touched, parallelism=options.parallelism, timeout=options.timeout
        )
        report.remaining = list(after.plan.actions)
        report.unreachable_after = dict(after.plan.unreachable)
        starting = [a for a in report.remaining if _waits_for_its_slot(a, made)]
        if not starting or len(starting) < len(report.remaining) or time.monotonic() > deadline:
            return
        time.sleep(POLL_SECONDS * 2)


def _created_subscription(action: Action) -> str | None:
    """The subscription a done action created (and whose slot its worker creates), if any."""
    if isinstance(action, CreateSubscription):
        return action.subscription.name
    if isinstance(action, ReplaceSubscription):
        return action.after.name
    return None


def _waits_for_its_slot(action: Action, made: set[str]) -> bool:
    """A replace the re-read plans only because a subscription made just now has no slot yet."""
    return (
        isinstance(action, ReplaceSubscription)
        and action.after.name in made
        and action.reason is not None
        and SLOT_MISSING in action.reason
    )


def _short_session(state: DesiredState, node: str, options: ApplyOptions) -> psycopg.Connection:
    """A writing connection of its own to `node`, outside the apply's locked sessions."""
    return db.connect(
        state.nodes[node].connect_dsn,
        timeout=options.timeout,
        writes=True,
        statement_timeout=options.statement_timeout,
    )


def _record_owed(
    state: DesiredState, action: Action, conn: psycopg.Connection, options: ApplyOptions
) -> str | None:
    """Before an action that may leave subscribers owing rows: say so in each one's pending_rows.

    The action's own node in its session; another subscriber (a provider's
    table added again) in a short connection of its own. Returns why a record
    could not be written (then the action must not run: nothing would remember
    the rows it leaves owed), or None.
    """
    because = f"{action.node}: {action.symbol} {action.describe()}"
    for subscriber, tables in sorted(owed(state, action).items()):
        try:
            if subscriber == action.node:
                pending_rows.record(conn, tables, because)
                continue
            with _short_session(state, subscriber, options) as other:
                pending_rows.record(other, tables, because)
        except (ConnectError, psycopg.Error) as exc:
            dsn = state.nodes[subscriber].connect_dsn
            reason = str(exc) if isinstance(exc, ConnectError) else db.short_reason(str(exc), dsn)
            return (
                f"not run: the rows it leaves {subscriber} owing could not be recorded there ({reason});"
                " nothing was changed: rerun `reconcile apply`"
            )
    return None


def _settle_owed(state: DesiredState, plan: Plan, report: ApplyReport, options: ApplyOptions) -> None:
    """Records verify cannot settle itself: a table in scope that it has nothing to compare with
    (the node has no declared provider of it any more) owes nothing, so its record goes too.
    (A table verify found whole is settled by verify, in its own session.) Best effort: a record
    left behind only makes the next apply look at that table again."""
    if report.verify is None:
        return
    # Only where a record may be: this apply's actions wrote them, or an earlier one did.
    owing = set(plan.pending_rows) | {s for o in report.outcomes for s in owed(state, o.action)}
    checked = {(t.subscriber, t.table) for t in report.verify.tables}
    whole: dict[str, set[str]] = {}
    for node in sorted(owing - set(report.verify.unreachable)):
        for table in report.rows.tables.get(node, ()):
            if (node, table) not in checked:
                whole.setdefault(node, set()).add(table)

    def settle(node: str) -> bool:
        try:
            with _short_session(state, node, options) as conn:
                pending_rows.settled(conn, whole[node])
        except (ConnectError, psycopg.Error):
            return False
        return True

    db.fan_out(sorted(whole), settle, options.parallelism, name="reconcile-settle-rows")


class _CopyReporter:
    """A repair's progress as apply events: the first and last batch of each table, and at most
    one line every PROGRESS_SECONDS in between."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.last: dict[tuple[str, str], float] = {}

    def __call__(self, p: verify_run.CopyProgress) -> None:
        now = time.monotonic()
        key = (p.subscriber, p.table)
        done = p.rows_copied >= p.rows_to_copy
        if not done and p.rows_copied and now - self.last.get(key, 0.0) < PROGRESS_SECONDS:
            return
        self.last[key] = now
        self.progress(Event(p.subscriber, copy_line(p)))


def copy_line(p: verify_run.CopyProgress) -> str:
    """`public.t: 2,000 of 3,000 rows, 412 kB, ETA 12 s` (a repair's progress, for people)."""
    eta = p.eta_seconds
    tail = f", ETA {eta:.0f} s" if eta is not None and p.rows_copied < p.rows_to_copy else ""
    return f"{p.table}: {p.rows_copied:,} of {p.rows_to_copy:,} rows, {_size(p.bytes_copied)}{tail}"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _converge_rows(
    state: DesiredState, plan: Plan, report: ApplyReport, options: ApplyOptions, progress: Progress
) -> None:
    """Verify and repair exactly the tables, on exactly the subscribers, the done actions may leave
    wrong, and those an earlier apply left owing rows (pending_rows.py)."""
    report.rows = row_scope(
        state, [o.action for o in report.outcomes if o.status is Status.DONE], plan.pending_rows
    )
    if not report.rows.tables:
        return
    if not options.repair:
        report.rows_skipped = "--no-repair"
        return
    for subscriber, tables in sorted(report.rows.tables.items()):
        progress(Event(subscriber, f"verify and repair {', '.join(sorted(tables))} ..."))
    report.verify = verify_run.run_verify(
        state,
        scope=report.rows.tables,
        do_repair=True,
        options=verify_run.Options(
            timeout=options.timeout,
            statement_timeout=max(options.statement_timeout, 60.0),
            # Never a delete: it replicates upstream, and a row stale here (a
            # moved district's history at its old region) may be one the
            # tier above must keep. Stale rows are reported instead.
            delete_stale=False,
            catch_up_first=True,
            record_progress=True,
        ),
        on_copy=_CopyReporter(progress),
    )
    _settle_owed(state, plan, report, options)
