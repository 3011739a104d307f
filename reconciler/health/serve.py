"""`reconcile serve`: /metrics and the status page / over HTTP, read at most once per cache period.

However often scraped or loaded, the network is read once per cache period;
/metrics and / show the same reading. Nothing here prints: a failed reading
and the listening port are handed to the caller's callbacks (the CLI words
and prints them), and the HTTP server logs no requests.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Generic, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client.core import Metric
from prometheus_client.exposition import make_wsgi_app
from prometheus_client.registry import Collector, CollectorRegistry

from reconciler.errors import LoadError, ReconcileError
from reconciler.health.network import network_health
from reconciler.health.report import HealthReport
from reconciler.load import load_desired_state
from reconciler.model import DesiredState
from reconciler.render.prometheus import READ_FAILURES, health_families, read_families
from reconciler.render.status_page import CONTENT_SECURITY_POLICY, render_status_page

# Called with a reading that failed: the desired state did not load (LoadError)
# or the network could not be read (another ReconcileError).
OnFailure = Callable[[ReconcileError], None]


@dataclass(frozen=True)
class Reading:
    """One reading of the network as both endpoints show it."""

    families: list[Metric]
    timestamp: float  # Unix time the reading started
    seconds: float  # how long it took
    state: DesiredState | None = None  # None: the desired state did not load
    report: HealthReport | None = None  # None: the reading failed
    failure: str | None = None  # why it failed, a key of READ_FAILURES


def read_once(
    directory: Path, *, drift: bool, parallelism: int, timeout: float, on_failure: OnFailure
) -> Reading:
    """One reading; the desired state is reloaded each time (a git pull applies)."""
    started = time.monotonic()
    timestamp = time.time()
    try:
        state = load_desired_state(directory)
    except LoadError as exc:
        # Every kind of broken desired state (a syntax error, a FIFO or a
        # directory named *.yaml, a file over the size limit) ends here: a
        # scrape is answered with read_success 0, never with an HTTP 500.
        on_failure(exc)
        took = time.monotonic() - started
        families = read_families(False, took, timestamp, failure="desired_state")
        return Reading(families, timestamp, took, failure="desired_state")
    try:
        run = network_health(state, directory, drift=drift, parallelism=parallelism, timeout=timeout)
    except ReconcileError as exc:
        on_failure(exc)
        took = time.monotonic() - started
        families = read_families(False, took, timestamp, failure="reading")
        return Reading(families, timestamp, took, state=state, failure="reading")
    families = [*health_families(run.report), *read_families(True, run.seconds, run.timestamp)]
    return Reading(families, run.timestamp, run.seconds, state=state, report=run.report)


T = TypeVar("T")


class ReadingCache(Generic[T]):
    """Hands out the last reading while it is younger than `cache_seconds`.

    A lock makes concurrent scrapes and page loads wait for one reading
    instead of starting one each: 100 nodes are read once per period, not
    once per client.
    """

    def __init__(self, read: Callable[[], T], cache_seconds: float) -> None:
        self._read = read
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._value: T | None = None
        self._read_at = float("-inf")
        self.readings = 0

    def get(self) -> T:
        with self._lock:
            if self._value is None or time.monotonic() - self._read_at >= self._cache_seconds:
                self._value = self._read()
                self._read_at = time.monotonic()
                self.readings += 1
            return self._value


class CachedCollector(Collector):
    """The cached reading's metric families, for prometheus_client's registry."""

    def __init__(self, cache: ReadingCache[Reading]) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        return iter(list(self._cache.get().families))


def page_refresh_seconds(cache_seconds: float) -> int:
    """How often the page reloads itself: once per new reading, and not more than every 5 s."""
    return max(5, math.ceil(cache_seconds))


def status_app(cache: ReadingCache[Reading], refresh_seconds: int) -> WSGIApplication:
    """/metrics (Prometheus) and / (the status page); anything else is 404."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CachedCollector(cache))
    metrics = make_wsgi_app(registry)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            answer: Iterable[bytes] = metrics(environ, start_response)
            return answer
        if path != "/":
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found: the status page is /, the metrics /metrics\n"]
        reading = cache.get()
        page = render_status_page(
            reading.state,
            reading.report,
            timestamp=reading.timestamp,
            seconds=reading.seconds,
            refresh_seconds=refresh_seconds,
            failure=None if reading.failure is None else READ_FAILURES[reading.failure],
        )
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
                ("X-Content-Type-Options", "nosniff"),
                ("Cache-Control", "no-store"),
            ],
        )
        return [page.encode("utf-8")]

    return app


class _QuietHandler(WSGIRequestHandler):
    """wsgiref logs every request on stderr; the library never prints."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    # One thread per request, not joined at close: a slow client holds only its own thread.
    daemon_threads = True


def serve(
    directory: Path,
    *,
    address: str,
    port: int,
    cache_seconds: float,
    drift: bool,
    parallelism: int,
    timeout: float,
    on_failure: OnFailure,
    on_listening: Callable[[int], None],
) -> None:
    """Serve until killed; `on_listening` gets the port once the server listens (0 picks a free one)."""
    cache = ReadingCache(
        lambda: read_once(
            directory, drift=drift, parallelism=parallelism, timeout=timeout, on_failure=on_failure
        ),
        cache_seconds,
    )
    app = status_app(cache, page_refresh_seconds(cache_seconds))

    # An IPv6 address (--address ::) needs an IPv6 socket: the family comes from the address.
    family, _, _, _, sockaddr = socket.getaddrinfo(
        address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]

    class Server(_ThreadingServer):
        address_family = family

    with make_server(str(sockaddr[0]), port, app, Server, handler_class=_QuietHandler) as server:
        on_listening(server.server_port)
        server.serve_forever()
