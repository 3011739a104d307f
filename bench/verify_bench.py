"""Benchmark: bytes `reconcile verify` moves to check a 1,000,000-row table with 10 differences.

Starts a throwaway PostgreSQL 15 + pglogical server (the sandbox code), makes
a provider and a subscriber database with the sandbox schema, fills both with
INSERT ... SELECT generate_series (no replication needed: verify compares
rows, whoever wrote them), injects differences at the subscriber and the
provider, then runs the same comparison `reconcile verify` runs and prints
table size, bytes read from each node, and their ratio; then repairs and
checks again. Usage: python -m bench.verify_bench [--rows N] [--port P] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
import uuid
from pathlib import Path

from psycopg import sql

from reconciler.sandbox_databases import create_database
from reconciler.sandbox_server import connect, ensure_server, remove_server
from reconciler.verify.compare import compare
from reconciler.verify.node import NodeSession, TableSide, passes, statement
from reconciler.verify.repair import repair

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "desired-state" / "sandbox-schema.sql"
TABLE = "public.technology"
FILTER = "approved"
# Rows (by g) made different; every one is approved (g % 10 != 0).
MISSING = (11, 222_221, 444_441, 888_881)
DIFFERING = (33, 333_333, 777_777)
STALE = (55, 555_555, 999_999)
COLUMNS = ("approved", "description", "district", "id", "title", "updated_at")

# Deterministic keys and values: row g is identical on both sides.
FILL = """
INSERT INTO public.technology (id, title, description, district, approved, updated_at)
SELECT md5('row' || g)::uuid,
       'technology ' || g,
       'how district ' || (g %% 97) || ' does it, step ' || g || ': ' || repeat('text ', 8),
       'district_' || (g %% 97),
       g %% 10 <> 0,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'
FROM generate_series(1, %(rows)s) AS g
WHERE %(all)s OR g %% 10 <> 0
"""


def key(g: int) -> str:
    """The key row g gets from FILL: md5('row' || g)::uuid."""
    return str(uuid.UUID(hashlib.md5(f"row{g}".encode()).hexdigest()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--port", type=int, default=26510)
    parser.add_argument("--keep", action="store_true", help="leave the server running")
    args = parser.parse_args(argv)
    rows: int = args.rows

    root = Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    root.chmod(0o755)
    pgdata = root / str(args.port)
    started = time.monotonic()
    ensure_server(args.port, pgdata)
    try:
        schema = SCHEMA.read_text()
        for db in ("bench_provider", "bench_subscriber"):
            create_database(args.port, db, schema)
        fill = sql.SQL(FILL)  # a constant of this file
        with connect(args.port, "bench_provider") as conn:
            conn.execute(fill, {"rows": rows, "all": True})
            conn.execute(sql.SQL("VACUUM ANALYZE public.technology"))
        with connect(args.port, "bench_subscriber") as conn:
            # The subscriber holds the approved rows only (every 10th row is a draft).
            conn.execute(fill, {"rows": rows, "all": False})
            conn.execute(sql.SQL("VACUUM ANALYZE public.technology"))
        print(f"setup: {rows} rows per side in {time.monotonic() - started:.1f} s")

        # 10 differences: 4 missing, 3 differing (edited by hand at the subscriber), 3 stale.
        with connect(args.port, "bench_subscriber") as conn:
            conn.execute(
                sql.SQL("DELETE FROM public.technology WHERE id = ANY(%s::uuid[])"),
                ([key(g) for g in MISSING],),
            )
            conn.execute(
                sql.SQL(
                    "UPDATE public.technology SET title = title || ' (edited)' WHERE id = ANY(%s::uuid[])"
                ),
                ([key(g) for g in DIFFERING],),
            )
        with connect(args.port, "bench_provider") as conn:
            # Approval withdrawn at the provider: the subscriber's copy is stale.
            conn.execute(
                sql.SQL("UPDATE public.technology SET approved = false WHERE id = ANY(%s::uuid[])"),
                ([key(g) for g in STALE],),
            )

        dsn = "host=127.0.0.1 port={} dbname={} user=postgres"
        prov = NodeSession(
            "provider", dsn.format(args.port, "bench_provider"), timeout=10, statement_timeout=600
        )
        sub = NodeSession(
            "subscriber",
            dsn.format(args.port, "bench_subscriber"),
            timeout=10,
            statement_timeout=600,
            writable=True,
        )
        sizes = {}
        for session in (prov, sub):
            sizes[session.node] = int(session.execute(statement("table_size"), {"table": TABLE})[0][0])
        prov.bytes_read = sub.bytes_read = 0
        mine = TableSide(sub, TABLE, "id", COLUMNS, sql.SQL("true"))
        theirs = {"provider": TableSide(prov, TABLE, "id", COLUMNS, passes(FILTER))}
        t0 = time.monotonic()
        outcome = compare(mine, theirs)
        seconds = time.monotonic() - t0
        missing, differing, stale = outcome.count()
        moved = prov.bytes_read + sub.bytes_read
        table_bytes = sizes["provider"]
        print(
            f"table {TABLE}: {rows} rows at the provider, pg_table_size {table_bytes} bytes "
            f"(subscriber {sizes['subscriber']} bytes)"
        )
        print(
            f"found: {missing} missing, {differing} differing, {stale} stale in {outcome.rounds} rounds, "
            f"{seconds:.2f} s"
        )
        print(f"bytes read: provider {prov.bytes_read}, subscriber {sub.bytes_read}, total {moved}")
        print(f"ratio: {100.0 * moved / table_bytes:.3f}% of the provider table's size (target < 5%)")

        prov.bytes_read = sub.bytes_read = 0
        result = repair(mine, theirs, outcome)
        again = compare(mine, theirs)
        print(
            f"repair: {result.inserted} inserted, {result.updated} updated, {result.deleted} deleted; "
            f"now {'consistent' if again.consistent else 'STILL DIFFERENT'} "
            f"(bytes read {prov.bytes_read + sub.bytes_read})"
        )
        prov.close()
        sub.close()
        injected = tuple(sum(1 for g in group if g <= rows) for group in (MISSING, DIFFERING, STALE))
        ok = (missing, differing, stale) == injected and again.consistent and moved < 0.05 * table_bytes
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"server kept: port {args.port}, data {pgdata}")
        else:
            remove_server(pgdata)
            root.rmdir()


if __name__ == "__main__":
    sys.exit(main())
