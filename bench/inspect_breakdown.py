"""Why a plan costs more than connect + SELECT 1: each inspection statement's time on a fresh backend.

Not part of `make bench` (it explains a figure, it is not one). Builds a
nation, a region and two districts on ports P..P+2, converges them, then
for each statement of the inspection batch opens a new connection (a cold
backend, as every plan has), runs the statement alone and times it; median
of N. Usage: python -m bench.inspect_breakdown [--port-base P] [--runs N] [--node NAME]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from reconciler.inspect.request import build_request, sql_text, statement
from reconciler.topology import desired_catalogs, edges
from tools.lab import Lab, converge, tree

DEFAULT_PORT_BASE = 26040
PIECES = (
    "pglogical/node",
    "pglogical/sets",
    "pglogical/subscriptions",
    "pglogical/orphan_slots",
    "server",
    "tables",
    "probe",
)


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
        payload = json.dumps(request.input, sort_keys=True)

        def cold(query: sql.SQL | None) -> float:
            t0 = time.monotonic()
            with psycopg.connect(dsn, autocommit=True) as conn:
                if query is None:
                    conn.execute("SELECT 1").fetchone()
                    return time.monotonic() - t0
                conn.execute("BEGIN")
                conn.execute(statement("input"), {"input": payload})
                t0 = time.monotonic()
                conn.execute(query)
                seconds = time.monotonic() - t0
                conn.execute("ROLLBACK")
            return seconds

        def ms(query: sql.SQL | None) -> float:
            return statistics.median(cold(query) for _ in range(args.runs)) * 1000

        print(f"node {args.node}, medians of {args.runs} fresh connections:")
        print(f"  {'connect + SELECT 1 (whole)':32s} {ms(None):6.2f} ms")
        total = 0.0
        for piece in PIECES:
            # The package's own .sql files, run one by one.
            value = ms(sql.SQL(sql_text(piece)))
            total += value
            print(f"  {piece + ' (alone)':32s} {value:6.2f} ms")
        print(
            f"  {'sum of the statements':32s} {total:6.2f} ms (probe runs the pglogical/* ones again inside)"
        )
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
