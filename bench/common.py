"""What every benchmark shares: the machine it ran on, figures, the results table and file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from reconciler.sandbox_server import pg_bin

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results.json"


@dataclass
class Figure:
    """One measured figure, with its target and whether it was met (None: no target)."""

    name: str
    value: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""
    details: dict[str, object] = field(default_factory=dict)
    machine: dict[str, object] = field(default_factory=dict)  # where and under what load it ran

    def shown(self) -> str:
        if self.value is None:
            return "n/a"
        if self.unit == "s":
            return f"{self.value:.3f} s"
        if self.unit == "x":
            return f"{self.value:.2f}x"
        if self.unit == "%":
            return f"{self.value:.1f} %" if self.value >= 1 else f"{self.value:.3f} %"
        if self.unit == "ms":
            return f"{self.value:.1f} ms"
        if self.unit == "bytes":
            return f"{int(self.value):,} B"
        return f"{self.value:g} {self.unit}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine(conninfo: str | None = None) -> dict[str, object]:
    """Cores, memory, CPU model, load, OS, PostgreSQL and pglogical versions."""
    info: dict[str, object] = {
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "cpu_model": _cpu_model(),
        "load_average": _load(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        out = subprocess.run(
            [str(pg_bin() / "postgres"), "--version"], capture_output=True, text=True, check=False
        )
        info["postgresql"] = out.stdout.strip()
    except Exception as exc:  # noqa: BLE001 - informational only
        info["postgresql"] = f"unknown ({exc})"
    if conninfo is not None:
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute(
                    "SELECT current_setting('server_version'),"
                    " (SELECT extversion FROM pg_extension WHERE extname = 'pglogical')"
                ).fetchone()
                if row:
                    info["postgresql_server"] = row[0]
                    info["pglogical"] = row[1]
        except psycopg.OperationalError:
            pass
    return info


def git_commit() -> str | None:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or None


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "target", "met", "note")]
    for f in figures:
        met = "-" if f.met is None else ("yes" if f.met else "NO")
        rows.append((f.name, f.shown(), f.target or "-", met, f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(r[j].ljust(widths[j]) for j in range(4)) + "  " + r[4])
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    return "\n".join(lines)


def write_results(figures: list[Figure], path: Path) -> None:
    """Write the figures; those of the file that this run did not measure stay (a run of some groups).

    Each figure carries the commit it was measured at (in its machine facts).
    """
    commit = git_commit()
    fresh = [asdict(f) for f in figures]
    for f in fresh:
        f["machine"] = {**f["machine"], "git_commit": commit}
    names = {f["name"] for f in fresh}
    kept: list[dict[str, object]] = []
    if path.exists():
        try:
            kept = [f for f in json.loads(path.read_text()).get("figures", []) if f.get("name") not in names]
        except (ValueError, AttributeError):
            kept = []
    doc = {
        "schema": 1,
        "git_commit": commit,
        "figures": kept + fresh,
    }
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
