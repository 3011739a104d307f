"""Machine-readable plan (`--format json`): a documented, versioned, stable schema.

Schema, format_version 1 (keys sorted, two-space indent, one trailing newline)::

    {
      "format_version": 1,
      "tool_version": "0.1.0",
      "desired_commit": "<git sha>" | null,
      "summary": {"to_add": int, "to_change": int, "to_destroy": int,
                  "has_changes": bool, "destructive": int,
                  "blockers": int, "unreachable": int},
      "nodes": ["<node planned>", ...],                 # sorted
      "actions": [                                      # execution order
        {"node": str, "kind": str, "symbol": "+"|"~"|"-"|"-/+",
         "subject": str, "description": str, "destructive": bool,
         "data_movement": "none"|"initial_copy"|"resync_needed"|"slot_dropped",
         ...the action's own fields (see reconciler/actions.py), DSNs without passwords}
      ],
      "blockers": [{"node": str, "table": str|null, "message": str}],   # sorted
      "unreachable": {"<node>": "<reason>"},
      "fingerprints": {"<node>": "<sha256 of its live catalog>"},
      "migrations_waiting": {"<node>": "<why its schema migrations wait>"},
      "migrations_unknown": {"<node>": ["<migration it ran that the desired state lacks>"]},
      "pending_rows": {"<node>": ["<table it still owes rows of: apply repairs it>"]},
      "moves": [{"node": str, "from": str, "to": str, "description": "move <node>: <from> -> <to>",
                 "steps": [int, ...]}],                  # indices into "actions", in order
      "retirements": [{"node": str, "parent": str, "description": str, "steps": [int, ...],
                       "rows": "kept upstream"}]       # a node no longer declared
    }

Adding keys is compatible; removing or changing one raises format_version.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.actions import Action
from reconciler.moves import moves, retirements
from reconciler.plan import Plan, redact_action
from reconciler.secrets import redact_text


def action_record(action: Action) -> dict[str, Any]:
    """One action as a JSON object: common keys plus its own fields."""
    record: dict[str, Any] = redact_action(action).model_dump(mode="json")
    record.update(
        node=action.node,
        kind=action.kind,
        symbol=action.symbol,
        subject=action.subject,
        description=action.describe(),
        destructive=action.destructive,
        data_movement=action.data_movement.value,
    )
    return record


def plan_document(plan: Plan) -> dict[str, Any]:
    s = plan.summary
    return {
        "format_version": plan.format_version,
        "tool_version": plan.tool_version,
        "desired_commit": plan.desired_commit,
        "summary": {
            "to_add": s.to_add,
            "to_change": s.to_change,
            "to_destroy": s.to_destroy,
            "has_changes": plan.has_changes,
            "destructive": len(plan.destroys),
            "blockers": len(plan.blockers),
            "unreachable": len(plan.unreachable),
        },
        "nodes": sorted(plan.nodes),
        "actions": [action_record(a) for a in plan.actions],
        "blockers": [
            {"node": b.node, "table": b.table, "message": redact_text(b.message)}
            for b in plan.sorted_blockers()
        ],
        "unreachable": {n: redact_text(r) for n, r in sorted(plan.unreachable.items())},
        "fingerprints": dict(sorted(plan.fingerprints.items())),
        "migrations_waiting": dict(sorted(plan.migrations_waiting.items())),
        "migrations_unknown": {n: list(m) for n, m in sorted(plan.migrations_unknown.items())},
        "pending_rows": {n: list(t) for n, t in sorted(plan.pending_rows.items())},
        "moves": [
            {"node": m.node, "from": m.old, "to": m.new, "description": m.describe(), "steps": list(m.steps)}
            for m in moves(plan.actions)
        ],
        "retirements": [
            {
                "node": r.node,
                "parent": r.parent,
                "description": r.describe(),
                "steps": list(r.steps),
                "rows": "kept upstream",
            }
            for r in retirements(plan.actions, plan.declared)
        ],
    }


def render_json(plan: Plan, stats: list[dict[str, object]] | None = None) -> str:
    """The plan document; with `stats` (plan --stats) also the per-node inspection costs under "stats"."""
    document = plan_document(plan)
    if stats is not None:
        document["stats"] = stats
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
