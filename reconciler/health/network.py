"""The status step of the flow: read health and (optionally) drift of every node at once, then judge."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler import db
from reconciler.config import load_operator_config
from reconciler.health.app_probe import AppReading, probe_apps
from reconciler.health.judge import judge
from reconciler.health.reader import read_network
from reconciler.health.readings import NodeReading
from reconciler.health.report import HealthReport
from reconciler.model import DesiredState
from reconciler.planner import compute_plan


@dataclass(frozen=True)
class HealthRun:
    report: HealthReport
    seconds: float  # wall time of the whole reading
    timestamp: float  # Unix time the reading started


def drift_counts(state: DesiredState, directory: Path, parallelism: int, timeout: float) -> dict[str, int]:
    """Planned changes per planned node (0 = in sync); unreachable nodes are absent."""
    plan = compute_plan(state, directory, parallelism=parallelism, timeout=timeout).plan
    per_node = Counter(action.node for action in plan.actions)
    return {node: per_node.get(node, 0) for node in plan.nodes if node not in plan.unreachable}


def network_health(
    state: DesiredState,
    directory: Path,
    *,
    drift: bool = True,
    parallelism: int = 32,
    timeout: float = 10.0,
) -> HealthRun:
    """Health readings, the plan's drift and the app_url probes side by side: a silent node or
    site costs one timeout, not the others'.

    LoadError when the operator configuration (its `[app] ca_file`) no longer loads.
    """
    timestamp = time.time()
    started = time.monotonic()
    counts: dict[str, int] | None = None
    readings: dict[str, NodeReading] = {}
    apps: Mapping[str, AppReading] = {}
    ca_file = load_operator_config().app_ca_file

    def read(part: str) -> None:
        nonlocal counts, readings, apps
        if part == "drift":
            counts = drift_counts(state, directory, parallelism, timeout)
        elif part == "apps":
            apps = probe_apps(state, timeout=timeout, ca_file=ca_file, parallelism=parallelism)
        else:
            readings = read_network(state, parallelism=parallelism, timeout=timeout)

    parts = ["health", "apps", "drift"] if drift else ["health", "apps"]
    db.fan_out(parts, read, len(parts), name="status")
    report = judge(state, readings, counts, apps)
    return HealthRun(report=report, seconds=round(time.monotonic() - started, 6), timestamp=timestamp)
