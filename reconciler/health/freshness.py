"""Pure: end-to-end freshness, each leaf's newest heartbeat as seen at every tier above it, judged.

A leaf writes its beat with `reconcile heartbeat`; its row travels up with the
replicated sets. The age at an observer is the observer's clock minus the
leaf's beat_at (clocks assumed in sync, NTP): the interval between beats plus
every lag on the way. CRIT at monitoring.max_freshness_seconds, WARN at
warn_fraction of it; a reachable observer that holds no beat of the leaf is
WARN (the heartbeat never ran, or no beat ever got through).
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.health.readings import NodeReading
from reconciler.health.report import Finding, FreshnessHealth, Level, worst
from reconciler.heartbeat import leaves, observers
from reconciler.model import DesiredState


def format_age(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def judge_freshness(state: DesiredState, readings: Mapping[str, NodeReading]) -> tuple[FreshnessHealth, ...]:
    """One entry per (leaf, node above it), sorted by (source, observer); none unless heartbeat is on."""
    limits = state.monitoring
    if not limits.heartbeat:
        return ()
    found: list[FreshnessHealth] = []
    for leaf in leaves(state):
        for observer in observers(state, leaf):
            reading = readings.get(observer)
            if reading is None or not reading.reachable:
                # The observer's own finding says it was not read; nothing to judge here.
                found.append(FreshnessHealth(source=leaf, observer=observer, seconds=None, level=Level.OK))
                continue
            age = reading.beats.get(leaf)
            findings: list[Finding] = []
            if age is None:
                findings.append(
                    Finding(
                        level=Level.WARN,
                        message=f"no beat of {leaf} has reached {observer}"
                        " (run `reconcile heartbeat`; has apply created the heartbeat table?)",
                    )
                )
            else:
                # A leaf clock ahead of the observer's gives a negative age: shown as 0.
                age = max(age, 0.0)
                warn_at = limits.warn_fraction * limits.max_freshness_seconds
                what = f"{leaf} as seen at {observer}: {format_age(age)}"
                if age >= limits.max_freshness_seconds:
                    findings.append(
                        Finding(
                            level=Level.CRIT,
                            message=f"{what} >= limit {format_age(limits.max_freshness_seconds)}",
                        )
                    )
                elif age >= warn_at:
                    message = f"{what} >= warn {format_age(warn_at)}"
                    findings.append(Finding(level=Level.WARN, message=message))
            found.append(
                FreshnessHealth(
                    source=leaf,
                    observer=observer,
                    seconds=age,
                    level=worst([f.level for f in findings]),
                    findings=tuple(findings),
                )
            )
    return tuple(sorted(found, key=lambda f: (f.source, f.observer)))
