"""The performance figures page, from bench/results.json (what `make bench` last wrote)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HEADER = """\
# Performance figures

Generated from `bench/results.json` (written by `make bench`) by `make docs`;
do not edit. How each figure is measured, which targets are not met and why,
and the reliability runs are in [Performance and reliability](../performance.md).
"""


def value_text(value: float, unit: str) -> str:
    """A measured value in its unit, as a person reads it: 16.6 s, 2,140,754 bytes, 10.1 %, 3.16x."""
    if unit == "bytes":
        return f"{value:,.0f} B"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "%":
        return f"{value:.3g} %"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:g} {unit}".strip()


def _cell(text: str) -> str:
    return " ".join(str(text).replace("|", "\\|").split())


def _machine(machine: dict[str, Any]) -> str:
    return (
        f"{machine.get('cores', '?')} cores ({machine.get('cpu_model', '?')}), "
        f"{machine.get('memory_gib', '?')} GiB, {machine.get('postgresql', '?')},"
        f" Python {machine.get('python', '?')}"
    )


def render(results_path: Path) -> str:
    data = json.loads(results_path.read_text(encoding="utf-8"))
    figures: list[dict[str, Any]] = data["figures"]
    out = [HEADER]
    if figures:
        out += [
            f"Machine: {_machine(figures[0].get('machine', {}))}. Commit measured: "
            f"`{str(data.get('git_commit', '?'))[:12]}`.",
            "",
        ]
    out += [
        "| figure | measured | target | met | note | load average (1 min) |",
        "|---|---|---|---|---|---|",
    ]
    for fig in figures:
        met = {True: "yes", False: "**no**", None: ""}[fig.get("met")]
        load = fig.get("machine", {}).get("load_average") or ["?"]
        out.append(
            f"| {_cell(fig['name'])} | {value_text(float(fig['value']), fig['unit'])}"
            f" | {_cell(fig.get('target', ''))} "
            f"| {met} | {_cell(fig.get('note', ''))} | {load[0]} |"
        )
    missed = [f for f in figures if f.get("met") is False]
    out += ["", f"{len(figures)} figures; {len(missed)} target(s) not met."]
    return "\n".join(out).rstrip() + "\n"
