"""A controllable TCP proxy for test links: latency, bandwidth cap, partitions, resets, byte counts.

Test tooling, not product code. One `NetProxy` runs an asyncio loop in a
daemon thread and holds any number of `Link`s; each link listens on a
loopback port and forwards every connection to one target. Everything is
controlled from ordinary (synchronous) Python: tests, benchmarks and the chaos
run put a link on an edge by pointing a node's `dsn` at `link.port`.

Faults, per link:
- latency: seconds added to every chunk, per direction (`up` = client ->
  target, `down` = target -> client). Like netem on one interface, setting
  only one direction adds that much to every round trip.
- bandwidth: bytes per second, per direction (a token bucket on delivery).
- partition("drop"): a black hole. Nothing is delivered in either direction
  and new connections are accepted but never answered, as when packets are
  dropped; a client only notices through its own timeouts (libpq
  connect_timeout, TCP keepalives). Data in flight is held and delivered on
  heal, as TCP retransmission would.
- partition("refuse"): every open connection is reset and new ones are
  reset at once, as a host that answers with RST.
- reset(): reset every open connection now (one flap).

Byte counters count what was delivered, per direction, since the last
`reset_counters()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")
PartitionMode = Literal["drop", "refuse"]
CHUNK = 65536


@dataclass
class Direction:
    """Shaping of one direction of a link."""

    latency: float = 0.0  # seconds added to each chunk
    bandwidth: float | None = None  # bytes per second, None = unlimited


class _Pipe:
    """One direction of one connection: read, delay, pace, deliver."""

    def __init__(
        self,
        link: Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: str,
    ) -> None:
        self.link = link
        self.reader = reader
        self.writer = writer
        self.direction = direction
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.next_free = 0.0  # token bucket: when the wire is free again

    @property
    def shape(self) -> Direction:
        return self.link.up if self.direction == "up" else self.link.down

    async def read_loop(self) -> None:
        try:
            while True:
                data = await self.reader.read(CHUNK)
                if not data:
                    break
                await self.queue.put((time.monotonic() + self.shape.latency, data))
        except (ConnectionError, OSError):
            pass
        await self.queue.put((time.monotonic() + self.shape.latency, b""))

    async def write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await self.queue.get()
                # A dropped link delivers nothing until it heals.
                await self.link._open.wait()
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if not data:
                    with contextlib.suppress(OSError):
                        if self.writer.can_write_eof():
                            self.writer.write_eof()
                    return
                rate = self.shape.bandwidth
                if rate:
                    now = loop.time()
                    start = max(now, self.next_free)
                    self.next_free = start + len(data) / rate
                    if self.next_free > now:
                        await asyncio.sleep(self.next_free - now)
                    await self.link._open.wait()
                self.writer.write(data)
                await self.writer.drain()
                self.link._count(self.direction, len(data))
        except (ConnectionError, OSError):
            return


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a reset connection, not a clean FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Link:
    """One proxied edge: a loopback listener forwarding to `target`."""

    def __init__(self, proxy: NetProxy, name: str, target: tuple[str, int]) -> None:
        self.proxy = proxy
        self.name = name
        self.target = target
        self.port = 0
        self.up = Direction()
        self.down = Direction()
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections_total = 0
        self.mode: PartitionMode | None = None
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()

    # -- control, from any thread ------------------------------------------

    def set_latency(self, up: float = 0.0, down: float = 0.0) -> None:
        self.up.latency, self.down.latency = up, down

    def set_bandwidth(self, up: float | None = None, down: float | None = None) -> None:
        self.up.bandwidth, self.down.bandwidth = up, down

    def partition(self, mode: PartitionMode = "drop") -> None:
        self.proxy._call(self._partition, mode)

    def heal(self) -> None:
        self.proxy._call(self._heal)

    def reset(self) -> None:
        """Reset (RST) every open connection; new ones are accepted as usual."""
        self.proxy._call(self._reset_all)

    def reset_counters(self) -> None:
        with self._lock:
            self.bytes_up = self.bytes_down = 0

    def counters(self) -> tuple[int, int]:
        with self._lock:
            return self.bytes_up, self.bytes_down

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    # -- inside the loop -----------------------------------------------------

    def _count(self, direction: str, n: int) -> None:
        with self._lock:
            if direction == "up":
                self.bytes_up += n
            else:
                self.bytes_down += n

    async def _start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self._reset_all()
        for task in list(self._tasks):
            task.cancel()

    async def _partition(self, mode: PartitionMode) -> None:
        self.mode = mode
        if mode == "drop":
            self._open.clear()
        else:
            self._open.set()
            await self._reset_all()

    async def _heal(self) -> None:
        self.mode = None
        self._open.set()

    async def _reset_all(self) -> None:
        for client, upstream in list(self._conns):
            _abort(client)
            if upstream is not None:
                _abort(upstream)
        self._conns.clear()

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self.connections_total += 1
        if self.mode == "refuse":
            _abort(cwriter)
            return
        entry: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (cwriter, None)
        self._conns.add(entry)
        try:
            # A black-holed link does not even reach the target.
            await self._open.wait()
            if entry not in self._conns:
                return  # reset while waiting
            try:
                treader, twriter = await asyncio.open_connection(*self.target)
            except OSError:
                _abort(cwriter)
                return
            self._conns.discard(entry)
            entry = (cwriter, twriter)
            self._conns.add(entry)
            up = _Pipe(self, creader, twriter, "up")
            down = _Pipe(self, treader, cwriter, "down")
            await asyncio.gather(up.read_loop(), up.write_loop(), down.read_loop(), down.write_loop())
        except asyncio.CancelledError:
            # Shutting down. Python 3.11's start_server callback calls
            # task.exception() on a cancelled handler and logs a traceback;
            # ending normally avoids that noise.
            pass
        finally:
            self._conns.discard(entry)
            for w in entry:
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()


class NetProxy:
    """An asyncio loop in a daemon thread holding any number of links."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="netproxy", daemon=True)
        self._thread.start()
        self.links: dict[str, Link] = {}

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _call(self, fn: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        self._run(fn(*args))

    def add(self, name: str, target: tuple[str, int], port: int = 0) -> Link:
        """Start a link listening on 127.0.0.1:`port` (0 = any free port) towards `target`."""
        if name in self.links:
            raise ValueError(f"link {name!r} exists")

        async def make() -> Link:
            link = Link(self, name, target)
            await link._start(port)
            return link

        link = self._run(make())
        self.links[name] = link
        return link

    def remove(self, name: str) -> None:
        link = self.links.pop(name)
        self._run(link._stop())

    def heal_all(self) -> None:
        for link in self.links.values():
            link.heal()

    def close(self) -> None:
        for name in list(self.links):
            with contextlib.suppress(Exception):
                self.remove(name)

        async def drain() -> None:
            # Connection handlers still winding down: cancel and await them, so
            # that no task is destroyed pending when the loop closes.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self._run(drain())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> NetProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LinkProcess:
    """Static links (fixed latency/bandwidth, no faults) served by a child `python -m tools.netproxy`.

    For benchmarks: the proxy's event loop then runs on its own interpreter
    and GIL, so it neither slows down nor is slowed down by the code measured.
    """

    def __init__(
        self,
        targets: list[tuple[str, int]],
        latency_up: float = 0.0,
        latency_down: float = 0.0,
        bandwidth: float | None = None,
    ) -> None:
        import subprocess
        import sys
        from pathlib import Path

        args = [sys.executable, "-m", "tools.netproxy", "--latency-up", str(latency_up)]
        args += ["--latency-down", str(latency_down)]
        if bandwidth is not None:
            args += ["--bandwidth", str(bandwidth)]
        args += [f"0={host}:{port}" for host, port in targets]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self.ports: list[int] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == "ready":
                break
            self.ports.append(int(line.split()[1]))
        if len(self.ports) != len(targets):
            self.close()
            raise RuntimeError(f"netproxy child started {len(self.ports)} of {len(targets)} links")

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> LinkProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """Serve links in a process of their own until stdin closes (or Ctrl-C).

    python -m tools.netproxy [--latency-up S] [--latency-down S] [--bandwidth B] LISTEN=HOST:PORT ...
    LISTEN 0 picks a free port. Prints `link LISTEN_PORT HOST:PORT` per link,
    then `ready`. A benchmark runs its links this way so that the proxy's
    event loop does not share a GIL with the code it measures.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m tools.netproxy", description=main.__doc__)
    parser.add_argument("maps", nargs="+", metavar="LISTEN=HOST:PORT")
    parser.add_argument("--latency-up", type=float, default=0.0, help="seconds added client -> target")
    parser.add_argument("--latency-down", type=float, default=0.0, help="seconds added target -> client")
    parser.add_argument("--bandwidth", type=float, default=None, help="bytes per second, each direction")
    args = parser.parse_args(argv)
    with NetProxy() as proxy:
        for i, spec in enumerate(args.maps):
            listen, _, target = spec.partition("=")
            host, _, port = target.rpartition(":")
            link = proxy.add(f"link{i}", (host or "127.0.0.1", int(port)), int(listen))
            link.set_latency(up=args.latency_up, down=args.latency_down)
            link.set_bandwidth(args.bandwidth, args.bandwidth)
            print(f"link {link.port} {host or '127.0.0.1'}:{port}", flush=True)
        print("ready", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()  # until the parent closes our stdin (or exits)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
