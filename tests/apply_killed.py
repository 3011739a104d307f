"""Test driver: plan and apply a directory in this process, and SIGKILL it right after the Nth action.

Usage: python tests/apply_killed.py DIRECTORY N

The fault comes from outside the library, through apply's progress callback
(as a crash or `kill -9` from an operator would): apply announces each action
with a line ending in " ..." before running it, so at the (N+1)th
announcement N actions have started (actions on other nodes run
concurrently: some of them may still be in flight) and the next has sent nothing.
The process dies with SIGKILL there (exit status -9 to the parent); it exits
1 when apply ended before that, so a test cannot pass by accident.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from reconciler.apply import ApplyOptions, Event, apply_plan
from reconciler.load import load_desired_state
from reconciler.planner import compute_plan


def main(directory: Path, kill_after: int) -> int:
    state = load_desired_state(directory)
    plan = compute_plan(state, directory).plan
    started = 0

    def progress(event: Event) -> None:
        nonlocal started
        if event.line.endswith(" ..."):  # an action is about to run
            started += 1
            if started > kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    apply_plan(state, directory, plan, ApplyOptions(), progress)
    print(f"apply ended after {started} action(s), before the kill after {kill_after}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
