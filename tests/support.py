"""Helpers shared by the real-server tests: run the CLI in-process, wait for replication."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from reconciler.cli import app


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """`reconcile ARGS`, in-process."""
    return CliRunner().invoke(app, list(args), env=env)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll `check` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def plan_actions(directory: Path) -> list[dict[str, Any]]:
    """The actions of `reconcile plan --format json` (which must not fail)."""
    result = cli("plan", "-d", str(directory), "--format", "json")
    assert result.exit_code in (0, 2), result.output
    actions: list[dict[str, Any]] = json.loads(result.stdout)["actions"]
    return actions


def assert_in_sync(directory: Path) -> None:
    result = cli("plan", "-d", str(directory), "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "No changes." in result.stdout
