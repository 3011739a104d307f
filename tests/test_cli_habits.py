"""CLI habits operators expect (issue 20): --version, plain flags, 'did you mean', precise input errors, no answer."""

from __future__ import annotations

import os
import pty
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import cli

from reconciler import __version__

EXAMPLE = Path(__file__).resolve().parent.parent / "desired-state"
# Every command, and the sandbox's, whose help is checked for placeholders on flags.
COMMANDS = [
    [],
    ["validate"],
    ["plan"],
    ["apply"],
    ["status"],
    ["verify"],
    ["review"],
    ["graph"],
    ["skip"],
    ["heartbeat"],
    ["serve"],
    ["sandbox"],
    ["sandbox", "up"],
    ["sandbox", "status"],
]


def test_version() -> None:
    result = cli("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"reconcile {__version__}\n"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "reconcile")
def test_help_shows_no_value_placeholder_on_plain_flags(command: list[str]) -> None:
    result = cli(*command, "--help", env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    assert "--help" in result.stdout


def test_help_still_shows_what_an_option_takes() -> None:
    text = cli("plan", "--help", env={"COLUMNS": "200"}).stdout
    assert re.search(r"--format\s+<text\|json\|markdown>", text), text
    assert re.search(r"--node\s+<name>", text), text


def test_shell_completion_is_offered() -> None:
    text = cli("--help", env={"COLUMNS": "200"}).stdout
    assert "--install-completion" in text and "--show-completion" in text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["plan", "--node", "natoin"], "--node names undeclared node(s): natoin (did you mean 'nation'?)"),
        (["apply", "--node", "natoin"], "--node names undeclared node(s): natoin (did you mean 'nation'?)"),
        (["verify", "--node", "region_eats"], "--node region_eats: not a declared node (did you mean 'region_east'?)"),
        (
            ["verify", "--table", "technolgy"],
            "--table technolgy: not a declared table (did you mean 'public.technology'?)",
        ),
        (["skip", "natoin", "region_east"], "natoin: not a declared node (did you mean 'nation'?)"),
        (
            ["skip", "nation", "district_a"],
            "nation does not subscribe to district_a in the desired state; it subscribes to region_east, region_west",
        ),
        (
            ["skip", "region_east", "district_z"],
            "district_z: not a declared node",
        ),
    ],
)
def test_a_mistyped_name_gets_did_you_mean(args: list[str], expected: str) -> None:
    # Refused before any connection: the example's servers need not run.
    result = cli(*args, "-d", str(EXAMPLE), "--timeout", "1")
    assert result.exit_code == 1, result.output
    assert expected in result.stderr


def test_skip_names_the_subscription_it_meant() -> None:
    result = cli("skip", "region_east", "district_c", "-d", str(EXAMPLE), "--timeout", "1")
    assert result.exit_code == 1, result.output
    assert (
        "region_east does not subscribe to district_c in the desired state (did you mean 'district_b'?);"
        " it subscribes to district_a, district_b" in result.stderr
    )
    close = cli("skip", "nation", "region_eats", "-d", str(EXAMPLE), "--timeout", "1")
    assert "region_eats: not a declared node (did you mean 'region_east'?)" in close.stderr


def test_a_file_given_as_the_directory_is_named_as_a_file(tmp_path: Path) -> None:
    result = cli("validate", "-d", str(EXAMPLE / "topology.yaml"))
    assert result.exit_code == 1
    assert "topology.yaml:1:1: a file, not a desired-state directory" in result.stderr
    assert "does not exist" not in result.stderr
    missing = cli("validate", "-d", str(tmp_path / "nowhere"))
    assert "nowhere:1:1: desired-state directory does not exist" in missing.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _nobody_answers(tmp_path: Path) -> Path:
    """The example network with every DSN at a port where nothing listens."""
    directory = tmp_path / "desired-state"
    shutil.copytree(EXAMPLE, directory, ignore=shutil.ignore_patterns("ci", "migrations"))
    topology = directory / "topology.yaml"
    # One closed port per level: nodes of different levels may not share a server.
    ports: dict[str, int] = {}
    text = re.sub(
        r"port=(\d+)", lambda m: f"port={ports.setdefault(m.group(1), _closed_port())}", topology.read_text()
    )
    topology.write_text(text)
    return directory


def test_every_node_unreachable_is_said_in_one_reason(tmp_path: Path) -> None:
    directory = _nobody_answers(tmp_path)
    plan = cli("plan", "-d", str(directory), "--timeout", "2")
    assert plan.exit_code == 3, plan.output
    assert "error: no node answered (7 of 7 unreachable), so nothing was read" in plan.stderr
    assert "Check the DSNs" in plan.stderr
    # Machine output stays what it was: the reason goes to stderr only.
    as_json = cli("plan", "-d", str(directory), "--timeout", "2", "--format", "json")
    assert as_json.stdout.lstrip().startswith("{") and "no node answered" not in as_json.stdout
    status = cli("status", "-d", str(directory), "--timeout", "2", "--no-drift")
    assert status.exit_code == 3, status.output
    assert "error: no node answered (7 of 7 unreachable), so no health was read" in status.stderr
    applied = cli("apply", "-d", str(directory), "--timeout", "2", "--auto-approve", "--allow-no-git")
    assert applied.exit_code == 1
    assert "no node answered" in applied.stderr


def test_every_named_node_unreachable_is_said_too(tmp_path: Path) -> None:
    directory = _nobody_answers(tmp_path)
    # Only the nodes asked for count: one named node that does not answer is all of them.
    one = cli("plan", "-d", str(directory), "--timeout", "2", "--node", "nation")
    assert "no node answered (1 of 1 unreachable)" in one.stderr


def _plain_env() -> dict[str, str]:
    """This environment without what forces colour on or off (CI may set either)."""
    forcing = {"NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"}
    return {k: v for k, v in os.environ.items() if k not in forcing}


def _run_on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """`reconcile ARGS` with its stdout on a pseudo-terminal, as a person at a shell runs it."""
    main, child = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            stdout=child,
            stderr=subprocess.DEVNULL,
            env={**_plain_env(), "TERM": "xterm-256color", "COLUMNS": "200", **env},
            timeout=60,
            check=False,
        )
        assert done.returncode == 3
        os.close(child)
        child = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(main)
        if child >= 0:
            os.close(child)


def test_status_is_coloured_on_a_terminal_only_and_never_with_no_color(tmp_path: Path) -> None:
    directory = _nobody_answers(tmp_path)
    args = ["status", "-d", str(directory), "--timeout", "2", "--no-drift"]
    env = _plain_env()
    coloured = _run_on_a_terminal(args, {})
    assert "\x1b[" in coloured and "CRIT" in coloured
    plain = _run_on_a_terminal(args, {"NO_COLOR": "1"})
    assert "\x1b[" not in plain and "CRIT" in plain
    piped = subprocess.run(
        [sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert "\x1b[" not in piped.stdout and "CRIT" in piped.stdout
