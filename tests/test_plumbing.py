"""The shared plumbing: one bounded fan-out, one atomic write, one size formatter, no test hook in the package."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler import db
from reconciler.files import atomic_write
from reconciler.model import format_bytes, parse_size

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"


def test_fan_out_keeps_the_order_and_bounds_the_calls_in_flight() -> None:
    lock = threading.Lock()
    running = 0
    most = 0

    def work(item: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return item * 10

    items = list(range(12))
    assert db.fan_out(items, work, 3) == [i * 10 for i in items]
    assert 1 < most <= 3


def test_fan_out_raises_only_after_every_call_ended() -> None:
    ended: list[int] = []

    def work(item: int) -> int:
        if item == 0:
            raise ValueError("first")
        time.sleep(0.05)
        ended.append(item)
        return item

    with pytest.raises(ValueError, match="first"):
        db.fan_out([0, 1, 2], work, 3)
    assert sorted(ended) == [1, 2]


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    atomic_write(target, "old\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # mkstemp's: the owner only
    atomic_write(target, b"new\n", mode=0o644)
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    # A directory cannot be replaced by a file: the old content stays, no temp file is left.
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(OSError):
        atomic_write(tmp_path / "dir.json", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.json", "plan.json"]
    assert target.read_text() == "new\n"


def test_format_bytes_rounded_and_exact() -> None:
    assert [format_bytes(v) for v in (0, 1023, 1536, 5 * 1024**3, 3 * 1024**5)] == [
        "0 B",
        "1023 B",
        "1.5 kB",
        "5.0 GB",
        "3072.0 TB",
    ]
    assert [format_bytes(v, exact=True) for v in (0, 100, 1536 * 1024, 5 * 1024**3, -1)] == [
        "0B",
        "100B",
        "1536kB",
        "5GB",
        "-1B",
    ]


@given(st.integers(min_value=0, max_value=2**50))
def test_an_exact_size_reads_back_as_the_same_bytes(value: int) -> None:
    assert parse_size(format_bytes(value, exact=True)) == value


def test_the_package_reads_no_test_hook_from_the_environment() -> None:
    """Faults are injected from outside (tests/apply_killed.py), never by a switch in production code."""
    hooks = [
        f"{path.relative_to(PACKAGE)}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if "RECONCILE_TEST" in path.read_text(encoding="utf-8")
    ]
    assert hooks == []
    assert os.path.exists(Path(__file__).parent / "apply_killed.py")
