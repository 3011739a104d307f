"""Bytes on a district -> region link for 100,000 rows of which 10% are approved: filtered vs unfiltered.

A nation, a region and a district, each on a server of its own. The
district's `dsn` (the DSN the region's subscription connects to) points at a
tools/netproxy link, so every byte the region's apply worker exchanges with
the district's walsender is counted. Once converged and replicating, the
counters are reset, 100,000 rows (every 10th approved) are inserted at the
district in 100 transactions, and the run waits until the region holds what
it should (10,000 rows filtered, 100,000 unfiltered). The same run is done
with the desired row filter and without any filter.
Usage: python -m bench.filter_bench [--port-base P] [--rows N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from bench.common import Figure, machine, table
from tools.lab import SETS, Lab, NodeSpec, converge, plain_dsn, tree
from tools.netproxy import NetProxy

DEFAULT_PORT_BASE = 26020
BATCH = 1000

UNFILTERED_SETS = """\
replication_sets:
  approved:
    replicate: [insert, update, delete]
    tables:
      public.technology: {}
      public.approach:
        columns: [id, title, status, district, updated_at]
"""

INSERT = """
INSERT INTO public.technology (title, description, district, approved)
SELECT 'technology ' || g,
       'how it is done, step ' || g || ': ' || repeat('text ', 12),
       'district_01_01',
       g %% 10 = 0
FROM generate_series(%(first)s::int, %(last)s::int) AS g
"""


def _count(conninfo: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM public.technology").fetchone()
    return int(row[0]) if row else 0


def one_run(port_base: int, rows: int, filtered: bool, root: Path) -> dict[str, float]:
    specs = tree(1, 1, port_base, [port_base + 1], [port_base + 2])
    lab = Lab(root / ("filtered" if filtered else "unfiltered"), specs)
    sets = SETS
    if not filtered:
        sets = root / "unfiltered-sets.yaml"
        sets.write_text(UNFILTERED_SETS)
    with NetProxy() as proxy:
        district = lab.specs["district_01_01"]
        link = proxy.add("district", ("127.0.0.1", district.port))

        def dsn(spec: NodeSpec) -> str:
            if spec.name == district.name:
                return f"host=127.0.0.1 port={link.port} dbname={spec.dbname} user=postgres"
            return plain_dsn(spec)

        try:
            lab.start()
            lab.create_databases()
            directory = lab.root / "desired-state"
            state = lab.write_desired(directory, dsn=dsn, sets=sets)
            converge(state, directory)
            lab.wait_replicating(timeout=300)
            time.sleep(1.0)  # let the initial handshake's bytes settle
            link.reset_counters()
            insert = sql.SQL(INSERT)  # a constant of this file
            t0 = time.monotonic()
            with psycopg.connect(district.conninfo, autocommit=True) as conn:
                wal0 = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
                for first in range(1, rows + 1, BATCH):
                    conn.execute(insert, {"first": first, "last": min(rows, first + BATCH - 1)})
                wal = conn.execute(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (wal0[0] if wal0 else None,)
                ).fetchone()
            want = rows // 10 if filtered else rows
            region = lab.specs["region_01"].conninfo
            deadline = time.monotonic() + 600
            while (have := _count(region)) < want:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"region holds {have} of {want} rows after 600 s")
                time.sleep(0.2)
            seconds = time.monotonic() - t0
            time.sleep(2.0)  # the last feedback messages
            down, up = link.counters()[1], link.counters()[0]
            return {
                "bytes_district_to_region": down,
                "bytes_region_to_district": up,
                "rows_at_region": have,
                "district_wal_bytes": float(wal[0]) if wal else 0.0,
                "seconds": seconds,
            }
        finally:
            lab.stop()


def run(port_base: int = DEFAULT_PORT_BASE, rows: int = 100_000) -> list[Figure]:
    root = Path(tempfile.gettempdir()) / f"reconcile-bench-{port_base}"
    print(f"filter: {rows} rows, 10% approved, on ports {port_base}..{port_base + 2}", flush=True)
    filtered = one_run(port_base, rows, True, root)
    print(f"  filtered: {filtered}", flush=True)
    unfiltered = one_run(port_base, rows, False, root)
    shutil.rmtree(root, ignore_errors=True)
    print(f"  unfiltered: {unfiltered}", flush=True)
    where = machine()
    f_bytes = filtered["bytes_district_to_region"]
    u_bytes = unfiltered["bytes_district_to_region"]
    share = 100.0 * f_bytes / u_bytes if u_bytes else float("nan")
    total_f = f_bytes + filtered["bytes_region_to_district"]
    total_u = u_bytes + unfiltered["bytes_region_to_district"]
    details = {"rows": rows, "filtered": filtered, "unfiltered": unfiltered}
    return [
        Figure(
            "link bytes district -> region, filtered",
            f_bytes,
            "bytes",
            "",
            None,
            f"{int(filtered['rows_at_region'])} rows arrived; both directions {int(total_f):,} B",
            details,
            where,
        ),
        Figure(
            "link bytes district -> region, unfiltered",
            u_bytes,
            "bytes",
            "",
            None,
            f"{int(unfiltered['rows_at_region'])} rows arrived; both directions {int(total_u):,} B",
            details,
            where,
        ),
        Figure(
            "link bytes, filtered / unfiltered",
            share,
            "%",
            "<= 15 %",
            share <= 15.0,
            f"{rows} rows inserted, 10% approved",
            details,
            where,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    print(table(run(args.port_base, args.rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
