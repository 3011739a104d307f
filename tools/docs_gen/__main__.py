"""Write every generated docs page (`make docs` runs this before `mkdocs build --strict`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from tools.docs_gen import causes, cli_ref, figures, schema_ref

ROOT = Path(__file__).resolve().parents[2]

# Page (under the docs directory) -> the function that writes its text.
PAGES: dict[str, Callable[[Path], str]] = {
    "reference/desired-state.md": lambda root: schema_ref.render(
        root / "schema" / "desired-state.schema.json"
    ),
    "reference/commands.md": lambda root: cli_ref.render(),
    "reference/figures.md": lambda root: figures.render(root / "bench" / "results.json"),
    "reference/causes.md": lambda root: causes.render(),
}


def generate(docs: Path, root: Path = ROOT) -> list[Path]:
    """Write each generated page under `docs`; returns the paths written."""
    written = []
    for name, make in PAGES.items():
        path = docs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make(root), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.docs_gen", description=__doc__)
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="docs directory (default: docs/)")
    args = parser.parse_args(argv)
    for path in generate(args.docs):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
