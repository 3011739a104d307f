"""Post a review as a GitLab merge-request note, or update the note an earlier push posted.

Usage (in a merge-request pipeline): python3 gitlab-mr-note.py review.md
Needs REVIEW_BOT_TOKEN (api scope) and GitLab's predefined CI variables. Standard library only.

The note to update is the bot's own: written by the token's user (GET /user)
and starting with MARKER. Every page of the merge request's notes is read
(GitLab's X-Next-Page), so a busy merge request does not get a second note;
a note someone else wrote, even one that starts with MARKER, is never touched.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
import urllib.request
from pathlib import Path

MARKER = "<!-- reconcile-review -->"
MAX_PAGES = 1000  # 100,000 notes: a bound, so a misbehaving server cannot keep the job paging forever


def call(method: str, url: str, token: str, body: dict[str, str] | None = None) -> tuple[object, str]:
    """(the JSON answer, the X-Next-Page header: "" on the last page)."""
    data = urllib.parse.urlencode(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"PRIVATE-TOKEN": token})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response), response.headers.get("X-Next-Page", "").strip()


def own_note(base: str, token: str, user_id: object) -> int | None:
    """The id of the newest note by `user_id` that starts with MARKER, else None."""
    page = "1"
    for _ in range(MAX_PAGES):
        notes, page = call("GET", f"{base}?per_page=100&sort=desc&order_by=created_at&page={page}", token)
        for note in notes if isinstance(notes, list) else []:
            if not isinstance(note, dict) or note.get("system"):
                continue
            author = note.get("author")
            mine = isinstance(author, dict) and author.get("id") == user_id
            if mine and str(note.get("body", "")).startswith(MARKER):
                return int(note["id"])
        if not page:
            return None
    return None


def main() -> int:
    text = Path(sys.argv[1]).read_text(encoding="utf-8")
    token = os.environ["REVIEW_BOT_TOKEN"]
    api = os.environ["CI_API_V4_URL"]
    base = (
        f"{api}/projects/{os.environ['CI_PROJECT_ID']}/merge_requests/{os.environ['CI_MERGE_REQUEST_IID']}/notes"
    )
    user, _ = call("GET", f"{api}/user", token)
    user_id = user.get("id") if isinstance(user, dict) else None
    body = {"body": f"{MARKER}\n{text}"}
    existing = own_note(base, token, user_id) if user_id is not None else None
    if existing is not None:
        call("PUT", f"{base}/{existing}", token, body)
        print(f"updated note {existing}")
        return 0
    created, _ = call("POST", base, token, body)
    print(f"posted note {created.get('id') if isinstance(created, dict) else '?'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
