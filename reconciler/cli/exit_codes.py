"""Every exit code of `reconcile`, and which one each command's result gives (the one place they live)."""

from __future__ import annotations

from enum import IntEnum

from reconciler.health.report import HealthReport, Level
from reconciler.plan import Plan
from reconciler.verify.run import Status, VerifyReport


class ExitCode(IntEnum):
    """0 nothing to report, 1 error or refusal, 2 something to act on, 3 some node did not answer.

    Code 2 means "changes" for plan, "degraded" for status and "differences"
    for verify: one number, a name per command.
    """

    OK = 0
    ERROR = 1
    CHANGES = 2
    UNREACHABLE = 3
    DEGRADED = 2
    DIFFERENCES = 2
    # SIGINT/SIGTERM (128 + 2, as a shell reports Ctrl-C): apply stopped, a rerun converges.
    INTERRUPTED = 130


def for_plan(plan: Plan, detailed: bool) -> ExitCode:
    """SPEC: 1 blocking errors, 3 some nodes unreachable, 2 changes (detailed only), else 0."""
    if plan.blockers:
        return ExitCode.ERROR
    if plan.unreachable:
        return ExitCode.UNREACHABLE
    if detailed and (plan.actions or plan.migrations_unknown or plan.pending_rows):
        return ExitCode.CHANGES
    return ExitCode.OK


def for_status(report: HealthReport) -> ExitCode:
    """SPEC: 3 when any node is unreachable, else 2 when anything is WARN or CRIT, else 0."""
    if report.unreachable:
        return ExitCode.UNREACHABLE
    if report.level is not Level.OK:
        return ExitCode.DEGRADED
    return ExitCode.OK


def for_verify(report: VerifyReport) -> ExitCode:
    """SPEC: 1 error, 3 unreachable, 2 differences (after repair, when repairing), else 0."""
    if any(t.status is Status.ERROR for t in report.tables):
        return ExitCode.ERROR
    if report.unreachable or any(t.status is Status.UNDECIDED for t in report.tables):
        return ExitCode.UNREACHABLE
    if any(t.final is not None and not t.final.consistent for t in report.tables):
        return ExitCode.DIFFERENCES
    return ExitCode.OK
