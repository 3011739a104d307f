"""Merge-request review: the semantic change between two git revisions, its risks and the live plan.

Flow: `gitops` reads both revisions from git objects -> `change` (deepdiff on
the models, grouped into nodes, links, sets, tables, settings) -> `risk` ->
`build` adds validation, the plan against live, the sentences and the diagram
(reconciler/render/review_sentences and review_mermaid). The Markdown and
JSON of a review are rendered by reconciler/render/review_markdown and
review_json.
"""

from __future__ import annotations

from reconciler.review.build import Live, Review, build_review
from reconciler.review.change import Change, semantic_change

__all__ = [
    "Change",
    "Live",
    "Review",
    "build_review",
    "semantic_change",
]
