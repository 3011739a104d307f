"""Machine-readable review (`review --format json`): a documented, versioned, stable schema.

Schema, format_version 1 (keys sorted, two-space indent, one trailing newline)::

    {
      "format_version": 1,
      "kind": "reconcile-review",
      "directory": "<desired-state dir relative to the repository>",
      "base": {"ref": str, "commit": str, "exists": bool, "valid": bool,
               "nodes": int, "links": int,
               "problems": [{"file": str, "line": int, "column": int, "message": str}]},
      "head": {... same as base ...},
      "blocking": bool,            # head invalid, or the live plan has blockers
      "change": {...} | null,      # reconciler/review/change.py Change, null when base is invalid
      "summary": [str, ...],       # the sentences of the Markdown, in order
      "risks": [{"kind": str, "subject": str, "message": str,
                 "estimates": [{"provider": str, "subscriber": str, "table": str,
                                "rows": int|null, "bytes": int|null}]}],
      "live": "planned"|"partial"|"unreachable"|"offline"|"not planned"|"not contacted",
      "unreachable": {"<node>": "<reason>"},     # contacted, did not answer
      "not_contacted": {"<node>": "<reason>"},   # new in head: no merged connection details
      "plan": {...} | null,        # the `plan --format json` document of head against live
      "mermaid": str | null
    }

Adding keys is compatible; removing or changing one raises format_version.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.render.plan_json import plan_document
from reconciler.review.build import Review, Side
from reconciler.secrets import redact_text


def _side(side: Side) -> dict[str, Any]:
    return {
        "ref": side.ref,
        "commit": side.commit,
        "exists": side.exists,
        "valid": side.valid,
        "nodes": side.nodes,
        "links": side.links,
        "problems": [p.model_dump(mode="json") for p in side.problems],
    }


def review_document(review: Review) -> dict[str, Any]:
    return {
        "format_version": review.format_version,
        "kind": "reconcile-review",
        "directory": review.directory,
        "base": _side(review.base),
        "head": _side(review.head),
        "blocking": review.blocking,
        "change": review.change.model_dump(mode="json") if review.change is not None else None,
        "summary": list(review.summary),
        "risks": [r.model_dump(mode="json") for r in review.risks],
        "live": review.live.value,
        "unreachable": {n: redact_text(r) for n, r in sorted(review.unreachable.items())},
        "not_contacted": dict(sorted(review.not_contacted.items())),
        "plan": plan_document(review.plan) if review.plan is not None else None,
        "mermaid": review.mermaid,
    }


def render_review_json(review: Review) -> str:
    return json.dumps(review_document(review), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
