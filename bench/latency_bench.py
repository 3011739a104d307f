"""End-to-end latency from a district commit to the row's arrival at the nation, under steady writes.

A nation, a region and two districts (each level on its own server). At the
nation an ALWAYS trigger (pglogical's apply worker runs with
session_replication_role = replica, so only ALWAYS triggers fire) records
clock_timestamp() of every arriving technology row in a side table that no
set replicates. Writers at both districts commit one approved row every
1/rate seconds each and note the wall-clock time after COMMIT returned; the
latency of a row is arrival minus that time (same host, same clock).
Usage: python -m bench.latency_bench [--port-base P] [--seconds S] [--rate R]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

from bench.common import Figure, machine, table
from tools.lab import Lab, converge, tree

DEFAULT_PORT_BASE = 26030

ARRIVAL = """
CREATE TABLE bench_arrival (id uuid PRIMARY KEY, arrived double precision NOT NULL);
CREATE FUNCTION bench_arrived() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_arrival VALUES (NEW.id, extract(epoch FROM clock_timestamp()))
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_arrived AFTER INSERT ON public.technology
    FOR EACH ROW EXECUTE FUNCTION bench_arrived();
ALTER TABLE public.technology ENABLE ALWAYS TRIGGER bench_arrived;
"""


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, min(len(sorted_values), round(p / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def _writer(conninfo: str, district: str, rate: float, seconds: float, out: dict[str, float]) -> None:
    period = 1.0 / rate
    with psycopg.connect(conninfo, autocommit=True) as conn:
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            key = str(uuid.uuid4())
            conn.execute(
                "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, %s, %s, true)",
                (key, f"latency probe {n}", district),
            )
            out[key] = time.time()
            n += 1
            pause = start + n * period - time.monotonic()
            if pause > 0:
                time.sleep(pause)


def run(port_base: int = DEFAULT_PORT_BASE, seconds: float = 30.0, rate: float = 10.0) -> list[Figure]:
    root = Path(tempfile.gettempdir()) / f"reconcile-bench-{port_base}"
    specs = tree(1, 2, port_base, [port_base + 1], [port_base + 2])
    lab = Lab(root, specs)
    print(f"latency: 2 districts x {rate:g} rows/s for {seconds:g} s, ports {port_base}..{port_base + 2}")
    try:
        lab.start()
        lab.create_databases()
        directory = root / "desired-state"
        state = lab.write_desired(directory)
        converge(state, directory)
        lab.wait_replicating(timeout=300)
        nation = lab.specs["nation"].conninfo
        with psycopg.connect(nation, autocommit=True) as conn:
            conn.execute(ARRIVAL)
        committed: dict[str, float] = {}
        writers = [
            threading.Thread(
                target=_writer,
                args=(lab.specs[d].conninfo, d, rate, seconds, committed),
                name=f"writer-{d}",
            )
            for d in ("district_01_01", "district_01_02")
        ]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        deadline = time.monotonic() + 120
        arrived: dict[str, float] = {}
        while time.monotonic() < deadline:
            with psycopg.connect(nation, autocommit=True) as conn:
                arrived = {str(k): float(v) for k, v in conn.execute("SELECT id, arrived FROM bench_arrival")}
            if len(arrived) >= len(committed):
                break
            time.sleep(0.5)
        lost = len(set(committed) - set(arrived))
        latencies = sorted(arrived[k] - committed[k] for k in committed if k in arrived)
    finally:
        lab.stop()
    where = machine()
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    details: dict[str, object] = {
        "rows": len(committed),
        "arrived": len(latencies),
        "lost": lost,
        "max_s": latencies[-1] if latencies else None,
        "rate_per_district": rate,
        "seconds": seconds,
    }
    print(f"  {len(latencies)}/{len(committed)} rows arrived: p50 {p50:.3f} s, p99 {p99:.3f} s", flush=True)
    note = f"{len(committed)} rows, 2 districts x {rate:g}/s" + (f"; {lost} NOT ARRIVED" if lost else "")
    return [
        Figure("latency district commit -> nation, p50", p50, "s", "", None, note, details, where),
        Figure("latency district commit -> nation, p99", p99, "s", "< 1 s", p99 < 1.0 and not lost, note,
               details, where),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=10.0, help="rows per second per district")
    args = parser.parse_args(argv)
    print(table(run(args.port_base, args.seconds, args.rate)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
