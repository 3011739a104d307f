"""The command reference page, from the typer app itself: every command, argument, option and exit code."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from reconciler.cli.app import app

# Exit codes of the commands whose help text does not state them (a help text
# with a paragraph starting "Exit codes" wins). A command in neither place
# fails the generator, so a new command cannot reach the docs without them.
EXIT_CODES: dict[str, str] = {
    "validate": "0 valid; 1 invalid (every problem as file:line:column).",
    "topology": "0; 1 the desired state is invalid.",
    "serve": "runs until stopped; 1 when it cannot start (port taken, invalid desired state at start).",
    "graph": "0.",
    "verify": "0 consistent; 2 differences (after the repair, with --repair); 1 error; 3 unreachable nodes.",
    "skip": "0 skipped and repaired; 2 tables still differ after the repair; 1 refused, cancelled or failed.",
    "sandbox up": "0; 1 error (PostgreSQL or pglogical missing, a port taken).",
    "sandbox down": "0; 1 error.",
    "sandbox status": "0; 1 error.",
}

HEADER = """\
# Command reference

Generated from the CLI itself (`reconciler.cli.app`) by `make docs`
(`python -m tools.docs_gen`); do not edit. `reconcile COMMAND --help` prints
the same. Every command that reads the desired state takes
`-d/--desired-state DIR` (default `$RECONCILE_DIR`, else `./desired-state`).

Exit codes across commands: **0** nothing to report, **1** error or refusal,
**2** something to act on (changes, degraded, differences), **3** some node did
not answer (the rest is still shown), **130** interrupted.
"""


def commands() -> Iterator[tuple[str, Any]]:
    """(full name, click command) of every leaf command, in the order `--help` lists them."""
    root = typer.main.get_command(app)

    def walk(cmd: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), cmd

    yield from walk(root, [])


def split_help(text: str) -> tuple[str, str | None]:
    """(description, exit-code paragraph or None) of a command's help text."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    rest: list[str] = []
    exits: list[str] = []
    for paragraph in paragraphs:
        flat = " ".join(line.strip() for line in paragraph.splitlines())
        match = re.search(r"Exit codes?:\s*", flat)
        if match is None:
            rest.append(flat)
            continue
        if flat[: match.start()].strip():
            rest.append(flat[: match.start()].strip())
        exits.append(flat[match.end() :])
    return "\n\n".join(rest), (" ".join(exits) if exits else None)


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _annotation(param: Any) -> Any:
    """The Python type the command declared for the parameter (typer keeps it; Click types are built late)."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    args = getattr(annotation, "__args__", None)
    if args and getattr(annotation, "__origin__", None) in (list, tuple):
        return args[0]
    return annotation


def param_type(param: Any) -> str:
    kind = _annotation(param)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return " \\| ".join(f"`{member.value}`" for member in kind)
    if getattr(param, "is_flag", False) or kind is bool:
        return "flag"
    names = {str: "text", int: "integer", float: "number", Path: "path"}
    name = names.get(kind, getattr(kind, "__name__", str(kind))) if kind is not None else "text"
    bounds = []
    if getattr(param, "min", None) is not None:
        bounds.append(f">= {param.min}")
    if getattr(param, "max", None) is not None:
        bounds.append(f"<= {param.max}")
    return name + (f" ({', '.join(bounds)})" if bounds else "")


def param_default(param: Any) -> str:
    default = param.default
    if (getattr(param, "is_flag", False) or _annotation(param) is bool) and default in (False, None):
        return ""
    if default is None or default == () or default == []:
        return ""
    if callable(default):
        return ""
    value = getattr(default, "value", default)
    return f"`{value}`"


def usage(name: str, cmd: Any) -> str:
    parts = [f"reconcile {name}"]
    for param in cmd.params:
        if param.param_type_name == "argument":
            meta = param.name.upper()
            parts.append(meta if param.required else f"[{meta}]")
    if any(p.param_type_name == "option" for p in cmd.params):
        parts.append("[OPTIONS]")
    return " ".join(parts)


def options(cmd: Any) -> list[Any]:
    return [p for p in cmd.params if p.param_type_name == "option" and not getattr(p, "hidden", False)]


def render() -> str:
    out = [HEADER]
    for name, cmd in commands():
        description, exit_text = split_help(cmd.help or "")
        exit_text = exit_text or EXIT_CODES.get(name)
        if not exit_text:
            raise SystemExit(
                f"tools.docs_gen: `reconcile {name}` states no exit codes: add them to EXIT_CODES"
            )
        out += [f"## `reconcile {name}`", "", "```text", usage(name, cmd), "```", ""]
        if description:
            out += [description, ""]
        arguments = [p for p in cmd.params if p.param_type_name == "argument"]
        if arguments:
            out += ["| argument | required | meaning |", "|---|---|---|"]
            for arg in arguments:
                meaning = _cell(getattr(arg, "help", None) or "")
                out.append(f"| `{arg.name.upper()}` | {'yes' if arg.required else 'no'} | {meaning} |")
            out.append("")
        opts = options(cmd)
        if opts:
            out += ["| option | value | default | meaning |", "|---|---|---|---|"]
            for opt in opts:
                names = ", ".join(f"`{o}`" for o in [*opt.opts, *opt.secondary_opts])
                meaning = _cell(opt.help or "")
                if opt.required:
                    meaning = "**required.** " + meaning
                if opt.multiple:
                    meaning += " (may be given more than once)"
                if getattr(opt, "envvar", None):
                    meaning += f" (env `{opt.envvar}`)"
                out.append(f"| {names} | {param_type(opt)} | {param_default(opt)} | {meaning} |")
            out.append("")
        out += [f"**Exit codes:** {_cell(exit_text)}", ""]
    return "\n".join(out).rstrip() + "\n"
