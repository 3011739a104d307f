"""The apply step: run a plan on the live network (executor), one apply at a time (locks), recorded (log)."""

from __future__ import annotations

from reconciler.apply.executor import ApplyOptions, ApplyReport, Outcome, Progress, Status, apply_plan

__all__ = ["ApplyOptions", "ApplyReport", "Outcome", "Progress", "Status", "apply_plan"]
