"""Strip passwords from connection strings before they reach output, logs or plan files."""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from reconciler.dsn import SECRETS as SECRET_KEYWORDS  # libpq's keywords whose values are secrets

# Control characters that are not whitespace: a terminal shows "pass\0word" as
# "password", so they may sit between the letters of a keyword.
_HIDDEN = "[\x00-\x08\x0e-\x1f\x7f-\x9f]*"


def _spelled(word: str) -> str:
    """A keyword in any case, each letter also percent-encoded (libpq decodes a URI's query keys)."""
    letters = []
    for ch in word:
        codes = sorted({f"%{ord(ch.lower()):02x}", f"%{ord(ch.upper()):02x}"})
        letters.append(f"(?:{re.escape(ch)}|{'|'.join(codes)})")
    return _HIDDEN.join(letters)


_SECRET_KEY = "(?:" + "|".join(_spelled(k) for k in sorted(SECRET_KEYWORDS, key=len, reverse=True)) + ")"
# libpq keyword form: keyword [spaces] = [spaces] value, where the value is
# single-quoted (backslash escapes anything, an unterminated quote runs to
# the end) or bare up to whitespace (a backslash escapes the next character:
# "Esc\ Leak" is one value). Every part is linear: no nested repetition.
_KEYWORD = re.compile(
    rf"\s?{_SECRET_KEY}[\s\x00-\x1f\x7f-\x9f]*=[\s\x00-\x1f\x7f-\x9f]*"
    rf"(?:'(?:\\.|[^'\\])*(?:'|\Z)|(?:\\.|[^\s\\])*\\?)",
    re.IGNORECASE | re.DOTALL,
)
# libpq recognises a URI by its exact prefix; any case is redacted all the same.
_URI_START = re.compile(r"\s*postgres(?:ql)?://", re.IGNORECASE)
_SCHEME = re.compile(r"postgres(?:ql)?://", re.IGNORECASE)
_SPACE = re.compile(r"\s")


def redact(dsn: str) -> str:
    """The DSN without any secret, otherwise unchanged.

    The password is removed rather than masked so that a redacted DSN saved
    in a plan file still connects: libpq then takes the password from
    ~/.pgpass, PGPASSFILE or PGPASSWORD, where secrets belong.
    """
    match = _URI_START.match(dsn)
    if match is None:
        return _KEYWORD.sub("", dsn).strip()
    head, rest = dsn[: match.end()], dsn[match.end() :]
    # As libpq reads a URI: the userinfo ends at an '@' before the first '/'
    # ('?' and '#' do not end it: "u:p?x@h" has the password "p?x"); the last
    # such '@' is taken, which removes at least what libpq would read.
    slash = rest.find("/")
    authority = rest if slash == -1 else rest[:slash]
    at = authority.rfind("@")
    if at != -1:
        user = authority[:at].split(":", 1)[0]
        rest = (f"{user}@" if user else "") + rest[at + 1 :]
    # Query parameters end at '&' only ('#' is part of a value for libpq);
    # keys are percent-decoded by libpq, so they are compared decoded.
    question = rest.find("?")
    if question != -1:
        kept = [p for p in rest[question + 1 :].split("&") if not _is_secret_key(p.split("=", 1)[0])]
        rest = rest[:question] + ("?" + "&".join(kept) if kept else "")
    return _KEYWORD.sub("", head + rest)


def _is_secret_key(raw: str) -> bool:
    key = re.sub(_HIDDEN, "", unquote(raw, errors="replace")).lower()
    return key in SECRET_KEYWORDS


def redact_text(text: str) -> str:
    """Free text with any secret that a quoted DSN could carry removed.

    In a URI the userinfo's password runs to the last '@' before whitespace,
    more than libpq would read: in free text nothing says where a DSN ends.
    """
    return _KEYWORD.sub("", _without_uri_passwords(text))


def _without_uri_passwords(text: str) -> str:
    # A loop rather than one regex: each stretch of text is looked at once, so
    # a hostile text ("postgresql://" thousands of times) costs linear time.
    pieces: list[str] = []
    pos = 0
    while (scheme := _SCHEME.search(text, pos)) is not None:
        space = _SPACE.search(text, scheme.end())
        end = space.start() if space is not None else len(text)
        rest = text[scheme.end() : end]
        at = rest.rfind("@")
        colon = rest.find(":", 0, max(at, 0))
        if at != -1 and colon != -1:
            rest = rest[:colon] + rest[at:]
        pieces += [text[pos : scheme.end()], rest]
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def scrub(text: str, dsn: str | None = None) -> str:
    """Free text (a server or libpq message) with every password it could hold removed.

    Both ways: passwords in anything shaped like a DSN (`redact_text`), and,
    literally wherever they appear, the passwords this connection could use
    (from `dsn`, and PGPASSWORD), masked as ***.
    """
    text = redact_text(text)
    for secret in _known_secrets(dsn):
        text = text.replace(secret, "***")
    return text


def _known_secrets(dsn: str | None) -> list[str]:
    found = [os.environ.get("PGPASSWORD", "")]
    if dsn is not None:
        # What libpq itself reads from it: libpq stops at a NUL.
        try:
            params = conninfo_to_dict(dsn.split("\x00", 1)[0])
        except (psycopg.ProgrammingError, UnicodeEncodeError):
            params = {}
        found += [str(params.get(k) or "") for k in SECRET_KEYWORDS]
    # Longest first, so that a password containing another is cut whole.
    return sorted({s for s in found if s}, key=len, reverse=True)
