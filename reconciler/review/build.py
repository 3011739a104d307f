"""Assemble a review: both revisions loaded from git, their semantic change, validation, live plan, risks."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from reconciler import gitops
from reconciler.errors import LoadError, PlanError
from reconciler.load import load_desired_texts
from reconciler.model import DesiredState, Frozen
from reconciler.plan import Plan
from reconciler.planner import compute_plan
from reconciler.review.change import Change, semantic_change
from reconciler.review.mermaid import render_mermaid
from reconciler.review.risk import Risk, change_risks, plan_risks, sort_risks, wanted_sizes
from reconciler.review.sentences import summarise
from reconciler.review.sizes import table_sizes
from reconciler.secrets import redact_text
from reconciler.topology import edges

FORMAT_VERSION = 1


class ProblemEntry(Frozen):
    """A validation problem; `file` is relative to the repository root."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class Side(Frozen):
    """One revision of the review: the ref as given, its commit, and whether it validates."""

    ref: str
    commit: str
    exists: bool  # the desired-state directory holds *.yaml files at this commit
    problems: tuple[ProblemEntry, ...] = ()
    nodes: int = 0
    links: int = 0

    @property
    def valid(self) -> bool:
        return self.exists and not self.problems


class Live(StrEnum):
    PLANNED = "planned"  # every node answered
    PARTIAL = "partial"  # some nodes answered; the plan covers them
    UNREACHABLE = "unreachable"  # no node answered
    OFFLINE = "offline"  # not asked (--offline)
    NOT_PLANNED = "not planned"  # head does not validate: nothing to plan


class Review(Frozen):
    format_version: int = FORMAT_VERSION
    directory: str  # desired-state directory relative to the repository root
    base: Side
    head: Side
    change: Change | None = None
    summary: tuple[str, ...] = ()
    risks: tuple[Risk, ...] = ()
    live: Live
    timeout: float
    unreachable: dict[str, str] = {}
    plan: Plan | None = None
    mermaid: str | None = None
    mermaid_left_out: int = 0

    @property
    def blocking(self) -> bool:
        return bool(self.head.problems) or not self.head.exists or bool(self.plan and self.plan.blockers)


def _load(directory: Path, ref: str) -> tuple[Side, DesiredState | None, str]:
    found = gitops.revision_files(directory, ref)
    prefix = found.prefix or "."
    if not found.files:
        problem = ProblemEntry(
            file=found.prefix or ".",
            line=1,
            column=1,
            message="no *.yaml files in the desired-state directory at this revision",
        )
        return Side(ref=ref, commit=found.commit, exists=False, problems=(problem,)), None, prefix
    try:
        state = load_desired_texts(found.files, origin=found.prefix or ".")
    except LoadError as exc:
        problems = tuple(
            ProblemEntry(
                file=p.location.file,
                line=p.location.line,
                column=p.location.column,
                message=redact_text(p.message),
            )
            for p in exc.problems
        )
        return Side(ref=ref, commit=found.commit, exists=True, problems=problems), None, prefix
    side = Side(ref=ref, commit=found.commit, exists=True, nodes=len(state.nodes), links=len(edges(state)))
    return side, state, prefix


def build_review(
    directory: Path,
    base_ref: str,
    head_ref: str = "HEAD",
    *,
    timeout: float = 10.0,
    offline: bool = False,
    parallelism: int = 32,
) -> Review:
    """Everything `reconcile review` shows; raises gitops.RevisionError when a revision cannot be read.

    The working tree is never read: both sides come from git objects, so the
    review shows exactly what the merge request proposes.
    """
    base, base_state, _ = _load(directory, base_ref)
    head, head_state, prefix = _load(directory, head_ref)
    if head_state is None:
        return Review(directory=prefix, base=base, head=head, live=Live.NOT_PLANNED, timeout=timeout)

    change: Change | None = None
    summary: list[str] = []
    risks: list[Risk] = []
    mermaid: str | None = None
    left_out = 0
    # A base that exists but does not validate cannot be compared model to model;
    # the head is still validated, drawn and planned.
    if base.valid or not base.exists:
        change = semantic_change(base_state, head_state)
        summary = summarise(change, base_state, head_state)
        risks = change_risks(change, base_state, head_state)
        mermaid, left_out = render_mermaid(change, base_state, head_state)

    plan: Plan | None = None
    live = Live.OFFLINE
    unreachable: dict[str, str] = {}
    if not offline:
        try:
            run = compute_plan(head_state, directory, parallelism=parallelism, timeout=timeout)
        except PlanError as exc:  # pragma: no cover - only raised for --node selections
            unreachable = {"*": redact_text(str(exc))}
            live = Live.UNREACHABLE
        else:
            unreachable = dict(run.plan.unreachable)
            if len(unreachable) == len(head_state.nodes):
                live = Live.UNREACHABLE
            else:
                live = Live.PARTIAL if unreachable else Live.PLANNED
                # compute_plan records the working tree's HEAD; the plan shown is of `head`.
                plan = run.plan.model_copy(update={"desired_commit": head.commit})
                wanted = {n: t for n, t in wanted_sizes(plan, head_state).items() if n not in unreachable}
                sizes = table_sizes(head_state, wanted, timeout)
                risks += plan_risks(plan, head_state, sizes)
    return Review(
        directory=prefix,
        base=base,
        head=head,
        change=change,
        summary=tuple(summary),
        risks=sort_risks(risks),
        live=live,
        timeout=timeout,
        unreachable=dict(sorted(unreachable.items())),
        plan=plan,
        mermaid=mermaid,
        mermaid_left_out=left_out,
    )
