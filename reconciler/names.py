"""'Did you mean' for a name the user typed: the closest known one, worded once for every command."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like `name` (difflib's ratio of at least 0.6), or None."""
    matches = difflib.get_close_matches(name, sorted(set(known)), n=1)
    return matches[0] if matches else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest known name, else the empty string."""
    match = closest(name, known)
    return f" (did you mean '{match}'?)" if match else ""
