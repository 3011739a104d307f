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
from reconciler.render.review_mermaid import render_mermaid
from reconciler.render.review_sentences import summarise
from reconciler.review.change import Change, semantic_change
from reconciler.review.plan_risk import plan_risks, wanted_sizes
from reconciler.review.risk import Risk, change_risks, sort_risks
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
    # No trusted connection details: base is missing or invalid, or every node of head is new.
    NOT_CONTACTED = "not contacted"


# Why a node of head is not read: its DSNs exist only in the merge request.
NEW_NODE = "not contacted: new in this merge request (its connection details are not merged yet)"


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
    unreachable: dict[str, str] = {}  # contacted, did not answer
    not_contacted: dict[str, str] = {}  # node -> why it was not contacted (NEW_NODE)
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
        state = load_desired_texts(found.files, origin=found.prefix or ".", migrations=found.migrations)
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
    review shows exactly what the merge request proposes. The live network is
    read only with the base revision's connection details (connect_as_base).
    """
    check_unambiguous(directory, base_ref)
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
    # the head is still validated and drawn (planned against live only with a
    # valid base: its DSNs are the only ones connected with, see connect_as_base).
    if base.valid or not base.exists:
        change = semantic_change(base_state, head_state)
        summary = summarise(change, base_state, head_state)
        risks = change_risks(change, base_state, head_state)
        mermaid, left_out = render_mermaid(change, base_state, head_state)

    plan: Plan | None = None
    live = Live.OFFLINE
    unreachable: dict[str, str] = {}
    not_contacted: dict[str, str] = {}
    if not offline:
        live = Live.NOT_CONTACTED
        if base_state is not None:
            contact, new = connect_as_base(head_state, base_state)
            not_contacted = {n: NEW_NODE for n in new}
            known = sorted(set(head_state.nodes) - set(new))
            if known:
                live, unreachable, plan, live_risks = _live(
                    contact,
                    directory,
                    known,
                    not_contacted,
                    head.commit,
                    timeout=timeout,
                    parallelism=parallelism,
                )
                risks += live_risks
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
        not_contacted=dict(sorted(not_contacted.items())),
        plan=plan,
        mermaid=mermaid,
        mermaid_left_out=left_out,
    )


# Where git looks a short ref name up, in its order (gitrevisions(7)): refs/<name>, then a tag,
# then a branch, then a remote-tracking branch. A tag comes first.
_REF_PLACES = ("refs/{}", "refs/tags/{}", "refs/heads/{}", "refs/remotes/{}", "refs/remotes/{}/HEAD")


def check_unambiguous(directory: Path, ref: str) -> None:
    """gitops.RevisionError when `ref` names several refs that point at different commits.

    The base's DSNs are the only ones the review connects with, so the base
    must be the revision the operator named. git resolves `main` or
    `origin/main` to a tag of that name before the branch: whoever can push
    a tag with a merge request would make its own head the trusted base.
    """
    repo = gitops.repository(directory)
    if repo is None:
        return  # gitops.revision_files reports it
    places = {place.format(ref) for place in _REF_PLACES}
    commits: dict[str, str] = {}
    for found in repo.refs:
        if found.path in places:
            try:
                commits[found.path] = found.commit.hexsha
            except ValueError:
                continue  # a tag of a tree or a blob: not a revision git would take here
    if len(set(commits.values())) > 1:
        raise gitops.RevisionError(
            f"--base {ref!r} is ambiguous: {', '.join(sorted(commits))} point at different commits; "
            "name the one meant in full (e.g. refs/remotes/origin/main)"
        )


def connect_as_base(head: DesiredState, base: DesiredState) -> tuple[DesiredState, list[str]]:
    """Head's desired state, to be read with base's connection details; and the nodes base lacks.

    The merge request is untrusted: a DSN it adds or changes could send the
    operator's password (~/.pgpass, PGPASSWORD) to a server of its choosing.
    So every connection the review opens uses the DSN the tool connects with
    in the base revision (merged, trusted), set as admin_dsn; head's `dsn`
    stays, so a changed replication DSN still shows as the plan's action.
    Nodes only head declares are never contacted.
    """
    nodes = {
        name: node.model_copy(update={"admin_dsn": base.nodes[name].connect_dsn})
        for name, node in head.nodes.items()
        if name in base.nodes
    }
    new = sorted(set(head.nodes) - set(base.nodes))
    return head.model_copy(update={"nodes": {**head.nodes, **nodes}}), new


def _live(
    contact: DesiredState,
    directory: Path,
    known: list[str],
    not_contacted: dict[str, str],
    commit: str,
    *,
    timeout: float,
    parallelism: int,
) -> tuple[Live, dict[str, str], Plan | None, list[Risk]]:
    """Plan head against the nodes base also declares, read with base's DSNs (see connect_as_base)."""
    try:
        run = compute_plan(contact, directory, nodes=known, parallelism=parallelism, timeout=timeout)
    except PlanError as exc:  # pragma: no cover - only raised for --node selections
        return Live.UNREACHABLE, {"*": redact_text(str(exc))}, None, []
    unreachable = dict(run.plan.unreachable)
    if len(unreachable) == len(known):
        return Live.UNREACHABLE, unreachable, None, []
    # compute_plan records the working tree's HEAD; the plan shown is of `head`. Nodes not
    # contacted are not planned, like those that did not answer, and say why.
    plan = run.plan.model_copy(
        update={
            "desired_commit": commit,
            "unreachable": dict(sorted({**unreachable, **not_contacted}.items())),
        }
    )
    wanted = {n: t for n, t in wanted_sizes(plan, contact).items() if n in known and n not in unreachable}
    sizes = table_sizes(contact, wanted, timeout)
    return (
        (Live.PARTIAL if unreachable else Live.PLANNED),
        unreachable,
        plan,
        plan_risks(plan, contact, sizes),
    )
