"""Apply's progress and the plan's symbols: live and coloured on a terminal, plain lines otherwise.

Colour follows https://no-color.org: none when NO_COLOR is set (to anything
but an empty string) or when the output is not a terminal; logs and pipes
get exactly the plain text, one line per event.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from reconciler.apply import Event, Status
from reconciler.plan import Plan

# By the first symbol of a plan or report line.
_STYLES = {"+": "green", "~": "yellow", "-": "red", "-/+": "magenta"}


def colour_wanted() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def echo_text(text: str) -> None:
    """Print rendered plan or report text; on a terminal, its action lines coloured by symbol."""
    if not colour_wanted():
        typer.echo(text, nl=False)
        return
    console = _console()
    for line in text.rstrip("\n").split("\n"):
        console.print(_styled(line))


# status's level tags, the first word of its lines.
_LEVEL_STYLES = {"CRIT": "bold red", "WARN": "yellow", "OK": "green"}


def echo_status(text: str) -> None:
    """Print status text; on a terminal, each line's level tag (CRIT, WARN, OK) coloured."""
    if not colour_wanted():
        typer.echo(text, nl=False)
        return
    console = _console()
    for line in text.rstrip("\n").split("\n"):
        stripped = line.lstrip()
        tag = stripped.split(" ", 1)[0].rstrip(":") if stripped else ""
        styled = Text(line)
        if tag in _LEVEL_STYLES:
            start = len(line) - len(stripped)
            styled.stylize(_LEVEL_STYLES[tag], start, start + len(tag))
        elif stripped.startswith("Status:"):
            worst = stripped.split(" ", 2)[1].rstrip(":") if " " in stripped else ""
            styled.stylize(_LEVEL_STYLES.get(worst, ""), 0, len(line))
        console.print(styled)


def _styled(line: str) -> Text:
    stripped = line.lstrip()
    symbol = stripped.split(" ", 1)[0] if stripped else ""
    if symbol in _STYLES:
        return Text(line, style=_STYLES[symbol])
    if stripped.startswith(("Error:", "failed", "Still different")) or ": failed:" in line:
        return Text(line, style="bold red")
    if stripped.startswith("converged"):
        return Text(line, style="bold green")
    return Text(line)


class ApplyProgress:
    """The progress callback for apply: a live panel on a terminal, else one plain line per event."""

    def __init__(self, plan: Plan, runnable: int) -> None:
        self.live_mode = colour_wanted()
        self.total = runnable
        self.nodes = len({a.node for a in plan.actions})
        self.done = 0
        self.failed = 0
        self.current: dict[str, str] = {}
        self.finished_nodes: set[str] = set()
        self.started = time.monotonic()
        self.guard = threading.Lock()
        self.console = _console()
        self.live: Live | None = None

    def __enter__(self) -> ApplyProgress:
        if self.live_mode:
            self.live = Live(self._panel(), console=self.console, refresh_per_second=4, transient=True)
            self.live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.live is not None:
            self.live.__exit__(kind, exc, tb)
            self.live = None

    def __call__(self, event: Event) -> None:
        with self.guard:
            if not self.live_mode or self.live is None:
                typer.echo(event.line)
                return
            if event.action is not None and event.status is None:
                self.current[event.node] = f"{event.action.symbol} {event.action.describe()}"
            elif event.action is not None:
                self.current.pop(event.node, None)
                if event.status is Status.DONE:
                    self.done += 1
                else:
                    self.failed += 1
                    self.live.console.print(_styled(event.line))
            else:
                self.live.console.print(Text(event.line))  # text, never rich markup
            self.live.update(self._panel())

    def _panel(self) -> Table:
        elapsed = time.monotonic() - self.started
        table = Table.grid(padding=(0, 1))
        table.add_row(
            Text(
                f"apply: {self.done}/{self.total} actions done, {self.failed} failed,"
                f" {len(self.current)} running, {elapsed:.0f} s",
                style="bold",
            )
        )
        for node, action in sorted(self.current.items())[:20]:
            table.add_row(Text(f"  {node}: {action}", style=_STYLES.get(action.split(" ", 1)[0], "")))
        if len(self.current) > 20:
            table.add_row(Text(f"  ... and {len(self.current) - 20} more nodes"))
        return table
