"""The desired state's JSON Schema, generated from the models (schema/desired-state.schema.json).

Editors validate and complete the YAML with it (a `# yaml-language-server:
$schema=...` line). A desired state may be split over several files, each
holding some of the top-level keys, so no top-level key is required in the
schema; the loader still requires `version`, `nodes` and `replication_sets`
of the merged whole. tools/write_schema.py writes the file; a test fails when
it is stale.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.model import DesiredState

SCHEMA_ID = "https://reconcile.invalid/schema/desired-state.schema.json"


def desired_state_schema() -> dict[str, Any]:
    """The schema of one file of a desired state, as a JSON document."""
    schema = DesiredState.model_json_schema(mode="validation")
    schema.pop("required", None)  # per file: any subset of the top-level keys
    # Migrations are SQL files beside the YAML, never a key in it.
    schema["properties"].pop("migrations", None)
    schema.get("$defs", {}).pop("Migration", None)
    return {
        # Draft 7: what yaml-language-server (editors) supports; pydantic's
        # "$defs" are plain JSON pointers there.
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        **schema,
        "title": "reconcile desired state (one file of it)",
    }


def desired_state_schema_text() -> str:
    """The file's exact bytes: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(desired_state_schema(), indent=2, sort_keys=True) + "\n"
