"""Markdown escaping every Markdown renderer shares: inline code spans and table cells."""

from __future__ import annotations


def code(text: str | None) -> str:
    """Inline code; backticks inside are replaced so they cannot end the span."""
    return "`" + (text or "").replace("`", "'") + "`"


def cell(text: str) -> str:
    """Text safe inside a table cell: backslashes and pipes escaped, one line."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
