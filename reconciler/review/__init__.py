"""Merge-request review: the semantic change between two git revisions, its risks and the live plan.

Flow: `gitops` reads both revisions from git objects -> `change` (deepdiff on
the models, grouped into nodes, links, sets, tables, settings) -> `sentences`
and `risk` -> `build` adds validation and the plan against live ->
`markdown` / `json` render, `mermaid` draws.
"""

from __future__ import annotations

from reconciler.review.build import Live, Review, build_review
from reconciler.review.change import Change, semantic_change
from reconciler.review.json import render_review_json
from reconciler.review.markdown import MAX_CHARS, render_review_markdown

__all__ = [
    "MAX_CHARS",
    "Change",
    "Live",
    "Review",
    "build_review",
    "render_review_json",
    "render_review_markdown",
    "semantic_change",
]
