"""The fault-injection TCP proxy (tools/netproxy.py) against a local echo server: no PostgreSQL needed."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tools.netproxy import Link, NetProxy  # noqa: E402


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A threaded echo server on a free loopback port."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def link(echo_port: int) -> Iterator[Link]:
    with NetProxy() as proxy:
        yield proxy.add("edge", ("127.0.0.1", echo_port))


def _client(link: Link, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", link.port), timeout=timeout)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        data = sock.recv(n - len(out))
        if not data:
            break
        out += data
    return out


def _roundtrip(sock: socket.socket, payload: bytes) -> float:
    t0 = time.monotonic()
    sock.sendall(payload)
    assert _recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - t0


def test_forwards_and_counts_each_direction(link: Link) -> None:
    with _client(link) as sock:
        _roundtrip(sock, b"x" * 1000)
        _roundtrip(sock, b"y" * 234)
    deadline = time.monotonic() + 2
    while link.counters() != (1234, 1234) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert link.counters() == (1234, 1234)
    link.reset_counters()
    assert link.counters() == (0, 0)


def test_latency_is_added_per_direction(link: Link) -> None:
    with _client(link) as sock:
        base = _roundtrip(sock, b"ping")
        link.set_latency(up=0.1, down=0.05)
        slow = _roundtrip(sock, b"ping")
        link.set_latency()
        fast = _roundtrip(sock, b"ping")
    assert slow >= 0.15
    assert slow < 0.15 + 0.5
    assert base < 0.1 and fast < 0.1


def test_bandwidth_cap_paces_delivery(link: Link) -> None:
    link.set_bandwidth(up=200_000, down=None)
    payload = b"z" * 100_000
    with _client(link) as sock:
        took = _roundtrip(sock, payload)
    # 100 kB at 200 kB/s: at least ~0.5 s minus the first chunk's head start.
    assert took >= 0.3
    assert took < 3.0


def test_drop_partition_black_holes_then_delivers_on_heal(link: Link) -> None:
    with _client(link) as sock:
        _roundtrip(sock, b"before")
        link.partition("drop")
        sock.sendall(b"during")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(100)
        link.heal()
        sock.settimeout(5)
        assert _recv_exactly(sock, 6) == b"during"


def test_drop_partition_new_connections_never_answer(link: Link) -> None:
    link.partition("drop")
    with _client(link) as sock:
        sock.sendall(b"hello")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(100)
    link.heal()
    with _client(link) as sock:
        _roundtrip(sock, b"after")


def test_refuse_partition_resets_open_and_new_connections(link: Link) -> None:
    sock = _client(link)
    _roundtrip(sock, b"before")
    link.partition("refuse")
    with pytest.raises(OSError):
        sock.sendall(b"x")
        if not sock.recv(10):
            raise ConnectionResetError("closed")
    sock.close()
    # A new connection is reset at once (during connect or at its first read).
    with pytest.raises(OSError), _client(link) as fresh:
        fresh.sendall(b"x")
        if not fresh.recv(10):
            raise ConnectionResetError("closed")
    link.heal()
    with _client(link) as sock2:
        _roundtrip(sock2, b"healed")


def test_reset_cuts_open_connections_only(link: Link) -> None:
    sock = _client(link)
    _roundtrip(sock, b"before")
    link.reset()
    with pytest.raises(OSError):
        sock.sendall(b"x")
        if not sock.recv(10):
            raise ConnectionResetError("closed")
    sock.close()
    assert link.open_connections == 0
    with _client(link) as sock2:
        _roundtrip(sock2, b"again")
