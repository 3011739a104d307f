"""The docs: generated pages build in strict mode, and every README command and output block is real."""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.health.causes import Cause
from tools.docs_gen import causes, cli_ref
from tools.docs_gen.__main__ import generate

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHELL_BLOCKS = ("sh", "shell", "bash", "console")


def blocks(text: str) -> list[tuple[str, list[str]]]:
    """(language, lines) of every fenced block."""
    found: list[tuple[str, list[str]]] = []
    lang: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, body = line[3:].strip(), []
            else:
                found.append((lang, body))
                lang = None
        elif lang is not None:
            body.append(line)
    return found


def readme_commands() -> list[list[str]]:
    """Every `reconcile ...` invocation of the README's shell blocks, as argv after `reconcile`."""
    commands = []
    for lang, body in blocks(README.read_text(encoding="utf-8")):
        if lang not in SHELL_BLOCKS:
            continue
        for line in body:
            if lang == "console":  # a console block: commands after the prompt, the rest is output
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            line = line.strip()
            if not line.startswith("reconcile "):
                continue
            argv = shlex.split(line, comments=True)
            commands.append(argv[1:])
    return commands


def resolve(argv: list[str]) -> tuple[str, Any, list[str]]:
    """(command name, click command, remaining args) for an argv of the typer app."""
    names = dict(cli_ref.commands())
    if len(argv) > 1 and f"{argv[0]} {argv[1]}" in names:
        name = f"{argv[0]} {argv[1]}"
        return name, names[name], argv[2:]
    assert argv and argv[0] in names, f"README runs `reconcile {' '.join(argv)}`: no such command"
    return argv[0], names[argv[0]], argv[1:]


def test_every_readme_command_is_one_the_cli_accepts() -> None:
    commands = readme_commands()
    assert len(commands) >= 6, "the README's tour shows validate, plan, apply, status, verify and review"
    shown = {resolve(argv)[0] for argv in commands}
    assert {"validate", "plan", "apply", "status", "verify", "review"} <= shown
    for argv in commands:
        name, cmd, args = resolve(argv)
        # The app's own parser: an unknown option, a missing value or a bad
        # choice raises here, as it would for the user.
        cmd.make_context(f"reconcile {name}", list(args))


# What each command prints, as the README shows it: a line that must be there,
# and the same words in the renderer's source, so that a change of wording
# fails here until the README follows.
SHAPES: dict[str, tuple[str, str]] = {
    "validate": (r"^valid: \d+ nodes, \d+ edges$", "nodes, "),
    "plan": (r"^Plan: \d+ to add, \d+ to change, \d+ to destroy\.$|^No changes\.", "to add, "),
    "apply": (r"^Apply: \d+ done, \d+ failed, ", " done, "),
    "status": (r"^Status: (OK|WARN|CRIT): \d+ crit, \d+ warn, \d+ ok, \d+ unreachable\.$", " unreachable."),
    "verify": (r"^Verify: \d+ missing, \d+ differing, \d+ stale in \d+ table\(s\)", " differing, "),
    "review": (r"^## reconcile review$", "## reconcile review"),
    "sandbox up": (r"^sandbox up: \d+ servers, \d+ nodes$", "sandbox up: "),
}


def console_outputs() -> list[tuple[str, list[str]]]:
    """(command name, output lines) of every console block: a `$ reconcile` line and what follows it."""
    found: list[tuple[str, list[str]]] = []
    for lang, body in blocks(README.read_text(encoding="utf-8")):
        if lang != "console":
            continue
        current: tuple[str, list[str]] | None = None
        for line in body:
            if line.startswith("$ "):
                argv = shlex.split(line[2:], comments=True)
                current = (resolve(argv[1:])[0], []) if argv and argv[0] == "reconcile" else None
                if current is not None:
                    found.append(current)
            elif current is not None:
                current[1].append(line)
    return found


def test_readme_output_blocks_have_the_shape_the_commands_print() -> None:
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "reconciler").rglob("*.py"))
    outputs = [(name, lines) for name, lines in console_outputs() if lines]
    assert {name for name, _ in outputs} >= {"validate", "plan", "apply", "status", "verify", "review"}
    for name, lines in outputs:
        assert name in SHAPES, f"README shows output of `reconcile {name}`: add its shape to SHAPES"
        pattern, words = SHAPES[name]
        assert any(re.search(pattern, line) for line in lines), f"`reconcile {name}` output lacks {pattern!r}"
        assert words in sources, (
            f"{words!r} (shown for `reconcile {name}`) is no longer printed by reconciler/"
        )
        # An excerpt elides with '...' lines; no other line is a prompt.
        assert not any(line.startswith("> ") for line in lines)


def test_every_status_cause_has_its_docs_entry() -> None:
    page = causes.render()
    for cause in Cause:
        assert f"## `{cause.value}`" in page


def test_every_command_states_its_exit_codes() -> None:
    page = cli_ref.render()
    for name, _ in cli_ref.commands():
        section = page.split(f"## `reconcile {name}`", 1)[1].split("\n## ", 1)[0]
        assert "**Exit codes:**" in section


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="mkdocs-material is not installed (pip install -e '.[docs]', or `make docs`)",
)
def test_generated_docs_build_in_strict_mode(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("reference"))
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    written = generate(tmp_path / "docs")
    assert {p.name for p in written} == {"desired-state.md", "commands.md", "figures.md", "causes.md"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "commands" / "index.html").exists()
