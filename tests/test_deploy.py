"""deploy/ and desired-state/ci/ as shipped: units call what `make install` gives and pass systemd-analyze;
the GitLab note script pages through every note and updates only its own."""

from __future__ import annotations

import http.server
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "deploy" / "systemd"
INSTALL_DIR = Path("/opt/reconcile")  # where the units' comments say to clone and `make install`


def exec_programs() -> list[str]:
    programs = []
    for unit in sorted(SYSTEMD.glob("*.service")):
        line = next(x for x in unit.read_text().splitlines() if x.startswith("ExecStart="))
        programs.append(shlex.split(line.removeprefix("ExecStart="))[0])
    return programs


def test_units_and_cron_call_what_make_install_gives() -> None:
    """`make install` makes .venv/bin/reconcile (pyproject's console script) in the clone: the units call it there."""
    programs = exec_programs()
    assert len(programs) == 4
    venv_script = Path(".venv/bin/reconcile")
    for program in programs:
        assert Path(program) == INSTALL_DIR / venv_script, program
    assert (ROOT / venv_script).is_file() and os.access(ROOT / venv_script, os.X_OK)
    cron = (ROOT / "deploy" / "cron" / "reconcile").read_text()
    assert f"PATH={INSTALL_DIR / venv_script.parent}:" in cron


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """The units as shipped, with /opt/reconcile being this checkout (verify checks the program exists)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (package systemd)")
    for unit in SYSTEMD.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace(str(INSTALL_DIR), str(ROOT)))
    units = sorted(str(p) for p in tmp_path.iterdir())
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # Unknown keys and sections are only warnings: any output at all is a finding.
    assert result.stderr.strip() == "" and result.stdout.strip() == "", result.stderr + result.stdout


BOT, HUMAN = 11, 99
MARKER = "<!-- reconcile-review -->"


def run_note_script(tmp_path: Path, notes: dict[int, tuple[int, str]], reviews: list[str]) -> list[str]:
    """Run desired-state/ci/gitlab-mr-note.py against a stand-in for GitLab's API; the requests it made."""
    seen: list[str] = []

    class GitLab(http.server.BaseHTTPRequestHandler):
        def _reply(self, payload: object, next_page: str = "") -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Next-Page", next_page)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> str:
            raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
            return urllib.parse.parse_qs(raw)["body"][0]

        def do_GET(self) -> None:  # noqa: N802
            assert self.headers["PRIVATE-TOKEN"] == "tok"
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/api/v4/user":
                seen.append("GET user")
                self._reply({"id": BOT, "username": "review-bot"})
                return
            query = urllib.parse.parse_qs(url.query)
            page, per_page = int(query["page"][0]), int(query["per_page"][0])
            seen.append(f"GET page {page}")
            newest_first = sorted(notes.items(), reverse=True)
            chunk = newest_first[(page - 1) * per_page : page * per_page]
            more = page * per_page < len(newest_first)
            self._reply(
                [{"id": k, "body": b, "author": {"id": a}, "system": False} for k, (a, b) in chunk],
                str(page + 1) if more else "",
            )

        def do_POST(self) -> None:  # noqa: N802
            seen.append("POST")
            notes[max(notes, default=0) + 1] = (BOT, self._body())
            self._reply({"id": max(notes)})

        def do_PUT(self) -> None:  # noqa: N802
            note = int(self.path.rsplit("/", 1)[1])
            seen.append(f"PUT {note}")
            notes[note] = (BOT, self._body())
            self._reply({})

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GitLab)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {
            **os.environ,
            "REVIEW_BOT_TOKEN": "tok",
            "CI_API_V4_URL": f"http://127.0.0.1:{server.server_address[1]}/api/v4",
            "CI_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_IID": "5",
        }
        script = ROOT / "desired-state" / "ci" / "gitlab-mr-note.py"
        for text in reviews:
            (tmp_path / "review.md").write_text(text)
            subprocess.run(
                [sys.executable, str(script), str(tmp_path / "review.md")],
                env=env,
                check=True,
                capture_output=True,
                timeout=60,
            )
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
    return seen


def test_gitlab_note_posts_once_then_updates(tmp_path: Path) -> None:
    notes = {7: (HUMAN, "an unrelated comment")}
    seen = run_note_script(tmp_path, notes, ["first review", "second review"])
    assert notes == {7: (HUMAN, "an unrelated comment"), 8: (BOT, f"{MARKER}\nsecond review")}
    assert seen == ["GET user", "GET page 1", "POST", "GET user", "GET page 1", "PUT 8"]


def test_gitlab_note_on_a_busy_merge_request_finds_its_own_on_a_later_page(tmp_path: Path) -> None:
    """250 notes: the bot's is on page 3; someone quoting the marker on page 1 is left alone."""
    notes = {i: (HUMAN, f"comment {i}") for i in range(1, 251)}
    notes[20] = (BOT, f"{MARKER}\nfirst review")
    notes[240] = (HUMAN, f"{MARKER}\nI pasted the bot's note here")
    seen = run_note_script(tmp_path, notes, ["second review"])
    assert seen == ["GET user", "GET page 1", "GET page 2", "GET page 3", "PUT 20"]
    assert notes[20] == (BOT, f"{MARKER}\nsecond review")
    assert notes[240] == (HUMAN, f"{MARKER}\nI pasted the bot's note here")
    assert len(notes) == 250
