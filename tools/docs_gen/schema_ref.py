"""The desired-state reference page, from schema/desired-state.schema.json (written from the models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HEADER = """\
# Desired-state reference

Generated from `schema/desired-state.schema.json` by
`make docs` (`python -m tools.docs_gen`); do not edit. The schema is written
from the models the loader uses, so this page is what `reconcile validate`
accepts. Rules a schema cannot express (the tree, names, DSN keywords, row
filters) are in [Validation rules](../validation.md). Editors can validate
and complete the YAML with the schema: add
`# yaml-language-server: $schema=../schema/desired-state.schema.json` to a file.

Every mapping refuses unknown keys (a typo is an error with a "did you mean").
"""


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(spec: dict[str, Any]) -> str:
    """A short, readable type: `string`, `integer or string`, `map of NodeDecl`, an enum's values."""
    if "$ref" in spec:
        return f"[{_ref_name(spec['$ref'])}](#{_ref_name(spec['$ref']).lower()})"
    if "enum" in spec:
        return " \\| ".join(f"`{v}`" for v in spec["enum"])
    if "const" in spec:
        return f"`{spec['const']}`"
    if "anyOf" in spec:
        kinds = [type_of(s) for s in spec["anyOf"] if s.get("type") != "null"]
        optional = any(s.get("type") == "null" for s in spec["anyOf"])
        text = " or ".join(dict.fromkeys(kinds))
        return text + (" (or null)" if optional else "")
    kind = spec.get("type")
    if kind == "array":
        return f"list of {type_of(spec.get('items', {}))}"
    if kind == "object":
        extra = spec.get("additionalProperties")
        if isinstance(extra, dict):
            return f"map of name -> {type_of(extra)}"
        return "mapping"
    return str(kind) if kind else "any"


def constraints(spec: dict[str, Any]) -> str:
    """Bounds, patterns and lengths, from the spec and from its non-null alternatives."""
    found: list[str] = []
    specs = [spec] + [s for s in spec.get("anyOf", []) if s.get("type") != "null"]
    for part in specs:
        for key, word in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
            ("minLength", "length >="),
            ("maxLength", "length <="),
            ("minItems", "items >="),
            ("maxItems", "items <="),
        ):
            if key in part:
                found.append(f"{word} {part[key]}")
        if "pattern" in part:
            found.append(f"pattern `{part['pattern']}`")
        if part.get("uniqueItems"):
            found.append("unique items")
    return "; ".join(dict.fromkeys(found))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(spec: dict[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" not in spec:
        return ""
    return f"`{json.dumps(spec['default'])}`"


def _table(obj: dict[str, Any]) -> list[str]:
    props: dict[str, Any] = obj.get("properties", {})
    required = set(obj.get("required", []))
    lines = ["| key | type | default | constraints | meaning |", "|---|---|---|---|---|"]
    for name in props:
        spec = props[name]
        meaning = spec.get("description", "")
        lines.append(
            f"| `{name}` | {_cell(type_of(spec))} | {_cell(_default(spec, name in required))} "
            f"| {_cell(constraints(spec))} | {_cell(meaning)} |"
        )
    return lines


def render(schema_path: Path) -> str:
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    out = [HEADER]
    title = schema.get("title", "DesiredState")
    out += [f"## {title} (top level)", "", schema.get("description", ""), ""]
    out += _table(schema)
    for name, spec in sorted(schema.get("$defs", {}).items()):
        out += ["", f"## {name}", ""]
        if spec.get("description"):
            out += [spec["description"], ""]
        if spec.get("type") == "object" and "properties" in spec:
            out += _table(spec)
        else:
            out += [f"Type: {type_of(spec)}."]
    return "\n".join(out).rstrip() + "\n"
