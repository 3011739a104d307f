"""`reconcile serve`: /metrics over HTTP, read at most once per cache period however often scraped.

Nothing here prints: a failed reading and the listening port are handed to
the caller's callbacks (the CLI words and prints them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector, CollectorRegistry

from reconciler.errors import LoadError, ReconcileError
from reconciler.health.network import network_health
from reconciler.load import load_desired_state
from reconciler.render.prometheus import health_families, read_families

# Called with a reading that failed: the desired state did not load (LoadError)
# or the network could not be read (another ReconcileError).
OnFailure = Callable[[ReconcileError], None]


def read_metrics(
    directory: Path, *, drift: bool, parallelism: int, timeout: float, on_failure: OnFailure
) -> list[Metric]:
    """One reading as metric families; the desired state is reloaded each time (a git pull applies)."""
    started = time.monotonic()
    timestamp = time.time()
    try:
        state = load_desired_state(directory)
    except LoadError as exc:
        # Every kind of broken desired state (a syntax error, a FIFO or a
        # directory named *.yaml, a file over the size limit) ends here: a
        # scrape is answered with read_success 0, never with an HTTP 500.
        on_failure(exc)
        return read_families(False, time.monotonic() - started, timestamp, failure="desired_state")
    try:
        run = network_health(state, directory, drift=drift, parallelism=parallelism, timeout=timeout)
    except ReconcileError as exc:
        on_failure(exc)
        return read_families(False, time.monotonic() - started, timestamp, failure="reading")
    return [*health_families(run.report), *read_families(True, run.seconds, run.timestamp)]


class CachedCollector(Collector):
    """Serves the last reading while it is younger than `cache_seconds`.

    A lock makes concurrent scrapes wait for one reading instead of starting
    one each: 100 nodes are read once per period, not once per scraper.
    """

    def __init__(self, read: Callable[[], list[Metric]], cache_seconds: float) -> None:
        self._read = read
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._families: list[Metric] = []
        self._read_at = float("-inf")
        self.readings = 0

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= self._cache_seconds:
                self._families = self._read()
                self._read_at = time.monotonic()
                self.readings += 1
            return iter(list(self._families))


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
    collector = CachedCollector(
        lambda: read_metrics(
            directory, drift=drift, parallelism=parallelism, timeout=timeout, on_failure=on_failure
        ),
        cache_seconds,
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, thread = start_http_server(port, addr=address, registry=registry)
    on_listening(server.server_port)
    thread.join()
