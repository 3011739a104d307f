"""The short chaos run of CI: `python -m chaos` with one fixed seed for a few seconds must lose nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.sandbox_server import port_in_use

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parent.parent
SEED = 20261128
SECONDS = 8


def _free_base() -> int:
    # Away from the fixtures (25440..), the demo (15441..), bench (26000..) and `make chaos` (27000..).
    for base in range(27100, 27500, 10):
        if not any(port_in_use(base + i) for i in range(4)):
            return base
    raise RuntimeError("no free block of 4 ports in 27100..27500")


def test_short_chaos_run_loses_nothing() -> None:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "chaos", "--seed", str(SEED), "--seconds", str(SECONDS),
         "--port-base", str(_free_base()), "--patience", "5"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    print(out)
    assert proc.returncode == 0, out
    assert f"chaos seed {SEED}: ZERO LOSS" in out
    # The run really wrote, really faulted, really killed a server, and verify really had work:
    assert "killed the region_" in out and "restarted the region_" in out
    assert "writes: " in out and "link faults: " in out
    assert "-> WRONG" not in out
    assert time.monotonic() - t0 < 120
