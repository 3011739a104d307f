"""Write schema/desired-state.schema.json from the models: `.venv/bin/python -m tools.write_schema`."""

from __future__ import annotations

from pathlib import Path

from reconciler.schema import desired_state_schema_text

TARGET = Path(__file__).resolve().parent.parent / "schema" / "desired-state.schema.json"


def main() -> None:
    TARGET.write_text(desired_state_schema_text())


if __name__ == "__main__":
    main()
