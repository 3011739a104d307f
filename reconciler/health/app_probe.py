"""Probe every node's web application (its `app_url`): up or down, HTTP status, how long it took.

One GET per URL, bounded by one timeout for the whole probe (connect,
TLS, redirects, headers). Up means a 2xx answer. TLS certificates are
verified, against the operator's CA file when one is configured
(config.py `[app] ca_file`), else the system's. A redirect is followed
only to the same host (at most MAX_REDIRECTS, never from https to
http): the URL is untrusted, and its site must not send the probe
elsewhere. No proxy from the environment is used: the probe measures the
site the way the database connections reach it, directly. The body is
never read.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urljoin

from reconciler import db
from reconciler.app_url import AppUrl, AppUrlError, parse_app_url
from reconciler.model import DesiredState, Frozen

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
USER_AGENT = "reconcile-status"


class AppReading(Frozen):
    """One node's application as probed."""

    node: str
    url: str
    up: bool
    http_status: int | None  # the last answer's status; None when none came
    seconds: float  # time the whole probe took
    reason: str | None = None  # why it is down


class _Timeout(Exception):
    """The probe's deadline passed."""


def _abort(conn: http.client.HTTPConnection) -> None:
    # Socket timeouts bound each read, not the whole answer: a server that
    # sends one byte a second would never trip them. Shutting the socket down
    # at the deadline ends the read in the probing thread.
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)


def _get(url: AppUrl, deadline: float, context: ssl.SSLContext | None) -> tuple[int, str | None]:
    """One request: (status, Location header)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Timeout
    conn: http.client.HTTPConnection
    if url.scheme == "https":
        conn = http.client.HTTPSConnection(url.host, url.port, timeout=remaining, context=context)
    else:
        conn = http.client.HTTPConnection(url.host, url.port, timeout=remaining)
    timer = threading.Timer(remaining, _abort, (conn,))
    timer.daemon = True
    timer.start()
    try:
        conn.request("GET", url.target, headers={"User-Agent": USER_AGENT, "Connection": "close"})
        response = conn.getresponse()
        if time.monotonic() >= deadline:
            # _abort cut the headers short: what was parsed is not the answer.
            raise _Timeout
        return response.status, response.getheader("Location")
    finally:
        timer.cancel()
        conn.close()


def _follow(current: str, url: AppUrl, location: str) -> tuple[str, AppUrl] | None:
    """The redirect's target when the probe may follow it: same host, no https -> http."""
    target = urljoin(current, location)
    try:
        following = parse_app_url(target)
    except AppUrlError:
        return None
    if following.host != url.host or (url.scheme == "https" and following.scheme == "http"):
        return None
    return target, following


def _reason(exc: BaseException, timeout: float) -> str:
    """One line saying why no answer came; never the URL (status prints it beside)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or type(exc).__name__}"
    if isinstance(exc, _Timeout | TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, http.client.HTTPException):
        return f"not an HTTP answer ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def probe_app(node: str, text: str, *, timeout: float, ca_file: Path | None = None) -> AppReading:
    """Probe one URL; never raises for a site that is down, slow or wrong."""
    started = time.monotonic()
    deadline = started + timeout

    def reading(up: bool, status: int | None, reason: str | None) -> AppReading:
        seconds = round(time.monotonic() - started, 6)
        return AppReading(node=node, url=text, up=up, http_status=status, seconds=seconds, reason=reason)

    status: int | None = None
    try:
        url = parse_app_url(text)
        context = ssl.create_default_context(cafile=ca_file) if url.scheme == "https" else None
        current = text
        for _ in range(MAX_REDIRECTS + 1):
            status, location = _get(url, deadline, context)
            if status not in REDIRECTS or location is None:
                up = 200 <= status < 300
                return reading(up, status, None if up else f"HTTP {status}")
            followed = _follow(current, url, location)
            if followed is None:
                return reading(False, status, f"HTTP {status}: redirect off-host (or to http) not followed")
            current, url = followed
        return reading(False, status, f"more than {MAX_REDIRECTS} redirects")
    except AppUrlError as exc:
        return reading(False, None, f"app_url {exc}")
    except (OSError, http.client.HTTPException, _Timeout) as exc:
        if time.monotonic() >= deadline:
            # An answer cut short by _abort reads as a closed connection.
            return reading(False, status, f"no answer within {timeout:g} s")
        return reading(False, status, _reason(exc, timeout))


def probe_apps(
    state: DesiredState, *, timeout: float, ca_file: Path | None = None, parallelism: int = 32
) -> Mapping[str, AppReading]:
    """Every declared app_url probed concurrently; keyed and sorted by node."""
    targets = sorted((name, node.app_url) for name, node in state.nodes.items() if node.app_url is not None)
    found = db.fan_out(
        targets, lambda target: probe_app(*target, timeout=timeout, ca_file=ca_file), parallelism, name="app"
    )
    return {reading.node: reading for reading in found}
