"""The verify figure of `make bench`: runs bench/verify_bench.py (when it exists) and reads its numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.common import Figure, machine

SCRIPT = Path(__file__).resolve().parent / "verify_bench.py"
NAME = "verify 1,000,000 rows, 10 differences: bytes moved / table size"


def run(rows: int = 1_000_000) -> list[Figure]:
    if not SCRIPT.exists():
        print("verify: not available yet (bench/verify_bench.py does not exist)", flush=True)
        return [Figure(NAME, None, "%", "", None, "not available yet")]
    print(f"verify: python -m bench.verify_bench --rows {rows}", flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "bench.verify_bench", "--rows", str(rows)],
        cwd=SCRIPT.parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    out = proc.stdout
    for line in out.splitlines():
        print(f"  {line}", flush=True)
    size = re.search(r"pg_table_size (\d+) bytes", out)
    moved = re.search(r"bytes read: .*total (\d+)", out)
    found = re.search(r"found: (\d+) missing, (\d+) differing, (\d+) stale", out)
    if proc.returncode not in (0, 1) or size is None or moved is None:
        tail = (proc.stderr or out).strip().splitlines()[-3:]
        return [Figure(NAME, None, "%", "", None, "verify bench failed: " + " | ".join(tail))]
    table_bytes, moved_bytes = int(size.group(1)), int(moved.group(1))
    share = 100.0 * moved_bytes / table_bytes
    details: dict[str, object] = {
        "rows": rows,
        "table_bytes": table_bytes,
        "bytes_moved": moved_bytes,
        "found_missing_differing_stale": [int(g) for g in found.groups()] if found else None,
        "exit_code": proc.returncode,
    }
    note = f"{moved_bytes:,} B moved for a {table_bytes:,} B table"
    if found:
        note += f"; found {sum(int(g) for g in found.groups())} of 10 differences"
    return [Figure(NAME, share, "%", "", None, note, details, machine())]
