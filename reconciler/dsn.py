"""libpq connection strings: parsing, the server they point at, and the password rule."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict

DEFAULT_PORT = 5432


class DsnError(ValueError):
    """The string is not a libpq connection string or URI."""


@dataclass(frozen=True, order=True)
class ServerAddress:
    """Which PostgreSQL server a DSN points at (one server = one host and port)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse(dsn: str) -> dict[str, str]:
    """Keyword form of a DSN or URI, as libpq itself parses it."""
    try:
        parsed = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        # libpq's message names the offending token, never a whole value.
        raise DsnError(str(exc).strip()) from exc
    return {k: str(v) for k, v in parsed.items() if v is not None}


def is_local_host(host: str | None) -> bool:
    """This machine: no host (a Unix socket), a socket directory, localhost, 127.0.0.0/8 or ::1."""
    if host is None or host == "" or host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_address(params: dict[str, str]) -> ServerAddress:
    """The server a parsed DSN reaches; every loopback spelling counts as one host.

    Without a host, libpq uses a Unix socket on this machine: also local.
    """
    host = params.get("hostaddr") or params.get("host") or ""
    host = host.split(",")[0].strip().lower()
    if is_local_host(host):
        host = "localhost"
    port_text = params.get("port", "").split(",")[0].strip()
    port = int(port_text) if port_text.isdigit() else DEFAULT_PORT
    return ServerAddress(host=host, port=port)


def database_key(params: dict[str, str]) -> tuple[ServerAddress, str]:
    """(server, database name): two DSNs with the same key reach the same database."""
    return server_address(params), params.get("dbname", params.get("user", ""))
