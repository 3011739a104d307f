"""`python -m bench` (what `make bench` runs): every figure, one table, bench/results.json.

Each group builds its own throwaway servers on its own ports (26000+ by
default, away from the test fixtures' 25440.. and the demo's 15441..), and
removes them afterwards. A group that fails is reported in the table with
its error; the others still run. Exit code 0 when every figure was measured
(targets missed are shown as such, not hidden), 1 when a figure could not be
measured.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    apply_bench,
    filter_bench,
    latency_bench,
    onboard_bench,
    plan_bench,
    scale_bench,
    verify_figure,
)
from bench.common import RESULTS, Figure, machine, table, write_results

GROUPS: dict[str, Callable[[argparse.Namespace], list[Figure]]] = {
    "plan": lambda a: plan_bench.run(a.port_base, a.repeat),
    "apply": lambda a: apply_bench.run(a.port_base + 40),
    "scale": lambda a: scale_bench.run(a.port_base + 60, max(1, a.repeat // 2)),
    "filter": lambda a: filter_bench.run(a.port_base + 20, a.rows),
    "latency": lambda a: latency_bench.run(a.port_base + 30, a.latency_seconds),
    "verify": lambda a: verify_figure.run(a.verify_rows),
    "onboard": lambda a: onboard_bench.run(a.port_base + 80, a.onboard_rows),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(GROUPS), help="run only this group")
    parser.add_argument("--port-base", type=int, default=plan_bench.DEFAULT_PORT_BASE)
    parser.add_argument("--repeat", type=int, default=5, help="runs per plan figure (median)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the filter figure")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--verify-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--onboard-rows", type=int, default=onboard_bench.DEFAULT_ROWS, help="rows of the onboarded district"
    )
    parser.add_argument("--out", default=str(RESULTS), help="results file")
    args = parser.parse_args(argv)
    where = machine()
    print(
        f"machine: {where['cores']} cores, {where['memory_gib']} GiB, {where['cpu_model']}, "
        f"load {where['load_average']}, {where['postgresql']}",
        flush=True,
    )
    figures: list[Figure] = []
    failed = False
    t0 = time.monotonic()
    for name in args.only or list(GROUPS):
        try:
            figures += GROUPS[name](args)
        except Exception as exc:  # noqa: BLE001 - one group failing must not hide the others
            traceback.print_exc()
            failed = True
            figures.append(Figure(f"{name}: FAILED", None, "", "", False, f"{type(exc).__name__}: {exc}"))
    failed = failed or any(f.value is None and "not available" not in f.note for f in figures)
    print()
    print(table(figures))
    write_results(figures, Path(args.out))
    print(f"\n{len(figures)} figures in {time.monotonic() - t0:.0f} s; written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
