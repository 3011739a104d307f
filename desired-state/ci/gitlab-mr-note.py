"""Post a review as a GitLab merge-request note, or update the note an earlier push posted.

Usage (in a merge-request pipeline): python3 gitlab-mr-note.py review.md
Needs REVIEW_BOT_TOKEN (api scope) and GitLab's predefined CI variables. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
import urllib.request
from pathlib import Path

MARKER = "<!-- reconcile-review -->"


def call(method: str, url: str, token: str, body: dict[str, str] | None = None) -> object:
    data = urllib.parse.urlencode(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"PRIVATE-TOKEN": token})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def main() -> int:
    text = Path(sys.argv[1]).read_text(encoding="utf-8")
    token = os.environ["REVIEW_BOT_TOKEN"]
    base = (
        f"{os.environ['CI_API_V4_URL']}/projects/{os.environ['CI_PROJECT_ID']}"
        f"/merge_requests/{os.environ['CI_MERGE_REQUEST_IID']}/notes"
    )
    body = {"body": f"{MARKER}\n{text}"}
    notes = call("GET", f"{base}?per_page=100&sort=desc", token)
    for note in notes if isinstance(notes, list) else []:
        if isinstance(note, dict) and str(note.get("body", "")).startswith(MARKER):
            call("PUT", f"{base}/{note['id']}", token, body)
            print(f"updated note {note['id']}")
            return 0
    created = call("POST", base, token, body)
    print(f"posted note {created.get('id') if isinstance(created, dict) else '?'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
