"""Demo step after `reconcile apply`: write approved and draft rows at every leaf, show where they arrive.

Run by `make demo` against the sandbox. Inserts one approved and one draft
technology (and one approved approach) at each leaf node, waits until every
approved row has reached the top level, then prints per node how many rows it
holds and, at the top, which rows arrived: only approved ones, from all leaves.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import psycopg

from reconciler.load import load_desired_state

TIMEOUT_SECONDS = 120


def main(directory: Path) -> int:
    state = load_desired_state(directory)
    leaves = sorted(n for n, d in state.nodes.items() if d.level == state.levels[0])
    tops = sorted(n for n, d in state.nodes.items() if d.level == state.levels[-1])
    run = uuid.uuid4().hex[:6]
    approved: list[str] = []
    for leaf in leaves:
        with psycopg.connect(state.nodes[leaf].connect_dsn, autocommit=True) as conn:
            for is_approved in (True, False):
                key = str(uuid.uuid4())
                conn.execute(
                    "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, %s, %s, %s)",
                    (key, f"{'approved' if is_approved else 'draft'} technology {run}", leaf, is_approved),
                )
                if is_approved:
                    approved.append(key)
            conn.execute(
                "INSERT INTO public.approach (title, status, district, internal_note)"
                " VALUES (%s, 'approved', %s, 'stays at the district')",
                (f"approved approach {run}", leaf),
            )
    print(f"Inserted at {len(leaves)} leaves: 1 approved + 1 draft technology and 1 approved approach each.")

    deadline = time.monotonic() + TIMEOUT_SECONDS
    for top in tops:
        with psycopg.connect(state.nodes[top].connect_dsn, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FROM public.technology WHERE id = ANY(%s::uuid[])", (approved,)
                ).fetchone()
                arrived = row[0] if row else 0
                if arrived == len(approved):
                    break
                if time.monotonic() > deadline:
                    print(f"{top}: {arrived} of {len(approved)} approved rows after {TIMEOUT_SECONDS} s")
                    return 1
                time.sleep(0.5)
    print("Every approved row reached the top level.\n")

    print(f"{'node':<14} {'level':<10} {'technology':>10} {'approved':>9} {'approach':>9}")
    for level in reversed(state.levels):
        for name in sorted(n for n, d in state.nodes.items() if d.level == level):
            with psycopg.connect(state.nodes[name].connect_dsn, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM public.technology),"
                    " (SELECT count(*) FROM public.technology WHERE approved),"
                    " (SELECT count(*) FROM public.approach)"
                ).fetchone()
            assert row is not None
            print(f"{name:<14} {level:<10} {row[0]:>10} {row[1]:>9} {row[2]:>9}")

    for top in tops:
        print(f"\nAt {top}: this run's technologies (only approved ones, from every leaf):")
        with psycopg.connect(state.nodes[top].connect_dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT district, title, approved FROM public.technology"
                " WHERE title LIKE %s ORDER BY district",
                (f"% {run}",),
            ).fetchall()
        for district, title, is_approved in rows:
            print(f"  {district:<12} {title:<32} approved={is_approved}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "desired-state")))
