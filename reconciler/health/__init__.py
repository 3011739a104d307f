"""Replication health: read every node (reader), judge the readings against thresholds (judge)."""

from __future__ import annotations

from reconciler.health.judge import judge
from reconciler.health.reader import read_network
from reconciler.health.readings import ApplySummary, NodeReading, SlotReading
from reconciler.health.report import EdgeHealth, Finding, HealthReport, Level, NodeHealth, SlotHealth

__all__ = [
    "ApplySummary",
    "EdgeHealth",
    "Finding",
    "HealthReport",
    "Level",
    "NodeHealth",
    "NodeReading",
    "SlotHealth",
    "SlotReading",
    "judge",
    "read_network",
]
