"""Why a plan costs more than connect + SELECT 1: each statement of the inspection batch on a fresh backend.

Not part of `make bench` (it explains a figure, it is not one). Builds a
nation, a region and two districts on ports P..P+2 and converges them. Then,
N times, it opens a new connection (a cold backend, as every plan has) and
runs the batch's statements one at a time, in the batch's order, timing
each; it prints the median of each, and the same for the batch with the
filter probe (a first plan from a machine). Statements later in the order
profit from catalogs an earlier one already looked up, as in the batch.
Usage: python -m bench.inspect_breakdown [--port-base P] [--runs N] [--node NAME]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from reconciler.inspect.read import batch
from reconciler.inspect.request import Request, build_request
from reconciler.topology import desired_catalogs, edges
from tools.lab import Lab, converge, tree

DEFAULT_PORT_BASE = 26040


def breakdown(dsn: str, request: Request, probe: bool, runs: int) -> list[tuple[str, float]]:
    """(statement, median ms) in batch order, plus the connection itself first."""
    steps = batch(request, request.probes if probe else ())
    timings: dict[str, list[float]] = {"connect": []}
    for _ in range(runs):
        t0 = time.monotonic()
        with psycopg.connect(dsn, autocommit=True) as conn:
            timings["connect"].append(time.monotonic() - t0)
            for name, query, params in steps:
                t0 = time.monotonic()
                conn.execute(query, params)
                timings.setdefault(name, []).append(time.monotonic() - t0)
    return [(name, statistics.median(values) * 1000) for name, values in timings.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--node", default="region_01")
    args = parser.parse_args(argv)
    base = args.port_base
    lab = Lab(
        Path(tempfile.gettempdir()) / f"reconcile-bench-{base}", tree(1, 2, base, [base + 1], [base + 2])
    )
    try:
        lab.start()
        lab.create_databases()
        directory = lab.root / "desired-state"
        state = lab.write_desired(directory)
        converge(state, directory)
        lab.wait_replicating()
        request = build_request(state, args.node, desired_catalogs(state)[args.node], edges(state))
        dsn = state.nodes[args.node].connect_dsn
        floor = []
        for _ in range(args.runs):
            t0 = time.monotonic()
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT 1").fetchone()
            floor.append(time.monotonic() - t0)
        print(f"node {args.node}, medians of {args.runs} fresh connections, statements one at a time:")
        print(f"  {'connect + SELECT 1 (the floor)':34s} {statistics.median(floor) * 1000:6.2f} ms")
        for probe in (False, True):
            label = "with the filter probe" if probe else "filters remembered (no probe)"
            print(f"batch, {label}:")
            total = 0.0
            for name, ms in breakdown(dsn, request, probe, args.runs):
                total += ms
                print(f"  {name:34s} {ms:6.2f} ms")
            print(f"  {'sum':34s} {total:6.2f} ms")
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
