"""The apply step: run a plan on the live network (executor, walking graph), one apply at a time (locks),
recorded (log), rows made whole (rows)."""

from __future__ import annotations

from reconciler.apply.executor import (
    ApplyOptions,
    ApplyReport,
    Event,
    Outcome,
    Progress,
    Status,
    apply_plan,
    settle_records,
)

__all__ = [
    "ApplyOptions",
    "ApplyReport",
    "Event",
    "Outcome",
    "Progress",
    "Status",
    "apply_plan",
    "settle_records",
]
