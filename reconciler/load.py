"""Desired-state YAML -> model (temporary minimal version; full validation follows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from reconciler.model import DesiredState


def load_desired_state(directory: Path) -> DesiredState:
    merged: dict[str, Any] = {}
    for path in sorted(directory.glob("*.yaml")):
        data = YAML(typ="safe").load(path.read_text())
        merged.update(data or {})
    return DesiredState.model_validate(merged)
