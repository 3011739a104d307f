"""Strip passwords from connection strings before they reach output, logs or plan files."""

from __future__ import annotations

import os
import re

from reconciler import dsn as dsnlib

# libpq keyword form: password = value, where value is bare or single-quoted
# with backslash escapes (libpq's conninfo grammar).
_KEYWORD = re.compile(r"""\s*\b(?:ssl)?password\s*=\s*(?:'(?:[^'\\]|\\.)*'?|\S*)""", re.IGNORECASE)
# URI form: scheme://user:password@host...; the userinfo ends at the LAST '@'
# before the path, because an unencoded '@' may appear inside a password.
_URI = re.compile(r"^(?P<scheme>postgres(?:ql)?://)(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_URI_QUERY_PASSWORD = re.compile(r"(?P<sep>[?&])(?:ssl)?password=[^&#]*(?P<amp>&?)", re.IGNORECASE)


def redact(dsn: str) -> str:
    """The DSN without any password, otherwise unchanged.

    The password is removed rather than masked so that a redacted DSN saved
    in a plan file still connects: libpq then takes the password from
    ~/.pgpass, PGPASSFILE or PGPASSWORD, where secrets belong.
    """
    match = _URI.match(dsn)
    if match is None:
        return _KEYWORD.sub("", dsn).strip()
    scheme, rest = match.group("scheme"), match.group("rest")
    authority_end = len(rest)
    for stop in "/?#":
        pos = rest.find(stop)
        if pos != -1:
            authority_end = min(authority_end, pos)
    authority, tail = rest[:authority_end], rest[authority_end:]
    # '@' inside a password is legal only when it is the userinfo's; take the last.
    at = authority.rfind("@")
    if at != -1:
        userinfo, hosts = authority[:at], authority[at + 1 :]
        user = userinfo.split(":", 1)[0]
        authority = f"{user}@{hosts}" if user else hosts
    tail = _URI_QUERY_PASSWORD.sub(_drop_query_param, tail)
    return f"{scheme}{authority}{tail}"


def _drop_query_param(match: re.Match[str]) -> str:
    # "?password=x&a=b" -> "?a=b"; "?a=b&password=x" -> "?a=b"; "?password=x" -> "".
    if match.group("sep") == "?":
        return "?" if match.group("amp") else ""
    return "&" if match.group("amp") else ""


# Free text (error messages, reasons) may quote a DSN anywhere, not only whole.
_TEXT_URI_PASSWORD = re.compile(r"(?P<head>postgres(?:ql)?://[^:/@\s]*):[^@\s]*@", re.IGNORECASE)


def redact_text(text: str) -> str:
    """Free text with any password that a quoted DSN could carry removed."""
    text = _TEXT_URI_PASSWORD.sub(lambda m: f"{m.group('head')}@", text)
    return _KEYWORD.sub("", text)


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
        try:
            params = dsnlib.parse(dsn)
        except dsnlib.DsnError:
            params = {}
        found += [params.get("password", ""), params.get("sslpassword", "")]
    # Longest first, so that a password containing another is cut whole.
    return sorted({s for s in found if s}, key=len, reverse=True)
