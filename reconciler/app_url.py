"""A node's `app_url` (its web application's health URL): the offline rules it must pass, and its parts.

The desired state comes from merge requests, so the URL is untrusted: it
is checked before anything is probed. Only http and https; a host, no
user or password (secrets never live in git, and `user@host` disguises
which host is meant); printable ASCII (a look-alike Unicode host is
refused: write its punycode form); a bounded length.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_LENGTH = 2048
SCHEMES = {"http": 80, "https": 443}


@dataclass(frozen=True)
class AppUrl:
    """The parts of an app_url the probe needs."""

    scheme: str  # "http" or "https"
    host: str  # lower case; an IPv6 address without brackets
    port: int
    target: str  # path and query, "/" when empty

    @property
    def origin(self) -> tuple[str, str, int]:
        """What decides "the same host" for a redirect."""
        return (self.scheme, self.host, self.port)


class AppUrlError(ValueError):
    """The text is not an acceptable app_url; the message says why, without quoting it."""


def parse_app_url(text: str) -> AppUrl:
    """The URL's parts, or AppUrlError saying which rule it breaks."""
    if len(text) > MAX_LENGTH:
        raise AppUrlError(f"is longer than {MAX_LENGTH} characters")
    bad = next((i for i, c in enumerate(text) if not (c.isascii() and c.isprintable()) or c == " "), None)
    if bad is not None:
        raise AppUrlError(
            f"holds U+{ord(text[bad]):04X} at character {bad + 1}: only printable ASCII without spaces"
            " (percent-encode it, or write a host's punycode form)"
        )
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a port that is not a number in 0-65535
    except ValueError as exc:
        raise AppUrlError(f"is not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise AppUrlError(f"must start with http:// or https:// (not {scheme or 'no scheme'})")
    if parts.username is not None or parts.password is not None:
        raise AppUrlError("must not hold a user or password (user@host): secrets never live in git")
    host = (parts.hostname or "").lower()
    if not host:
        raise AppUrlError("names no host")
    if port == 0:
        raise AppUrlError("port 0 is not a port one can connect to")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return AppUrl(scheme=scheme, host=host, port=port or SCHEMES[scheme], target=target)
