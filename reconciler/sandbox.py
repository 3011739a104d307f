"""Local sandbox: plan, start, inspect and stop one PostgreSQL server per local port."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from reconciler.dsn import is_local_host
from reconciler.errors import SandboxError
from reconciler.model import DesiredState
from reconciler.sandbox_databases import create_database, drop_database, drop_databases, existing_databases
from reconciler.sandbox_server import ensure_server, is_running, remove_server

__all__ = [
    "DEFAULT_DATA_DIR",
    "DatabasePlan",
    "ServerPlan",
    "ServerReport",
    "ServerStatus",
    "create_database",
    "down",
    "drop_database",
    "drop_databases",
    "ensure_server",
    "is_local_host",
    "plan_servers",
    "remove_server",
    "server_dir",
    "status",
    "up",
]

DEFAULT_DATA_DIR = Path(".sandbox")
# libpq's default socket directory on Debian: DSNs without a host connect there.
DEFAULT_SOCKET_DIR = "/var/run/postgresql"


@dataclass(frozen=True)
class DatabasePlan:
    """One node's database on a sandbox server."""

    dbname: str
    node: str


@dataclass(frozen=True)
class ServerPlan:
    """One local server: a port, the level its nodes share, their databases."""

    port: int
    level: str
    databases: tuple[DatabasePlan, ...]
    listen: tuple[str, ...] = ("127.0.0.1",)
    # Unix socket directories that DSNs of this server name (or, without a
    # host, libpq's default one); the server listens there too.
    socket_dirs: tuple[str, ...] = ()

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(db.node for db in self.databases)


@dataclass(frozen=True)
class ServerReport:
    """What `up` did for one server."""

    plan: ServerPlan
    data_dir: Path
    server: str  # "created", "started" or "running"
    created_databases: tuple[str, ...]


@dataclass(frozen=True)
class ServerStatus:
    """One server as `status` sees it."""

    plan: ServerPlan
    data_dir: Path
    running: bool
    existing_databases: tuple[str, ...]
    # False after `down` (or before the first `up`): there is no data directory to show.
    data_exists: bool = True


@dataclass(frozen=True)
class _Endpoint:
    host: str | None
    port: int
    dbname: str


def _local_endpoint(dsn: str) -> _Endpoint | None:
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise SandboxError(f"cannot parse DSN: {exc}") from exc
    host = parts.get("host") or os.environ.get("PGHOST")
    hosts = str(host).split(",") if host else [None]
    if len(hosts) != 1 or not is_local_host(hosts[0]):
        return None
    port_text = str(parts.get("port") or os.environ.get("PGPORT") or "5432")
    try:
        port = int(port_text)
    except ValueError as exc:
        raise SandboxError(f"not a port number: {port_text!r}") from exc
    user = parts.get("user") or os.environ.get("PGUSER") or "postgres"
    dbname = str(parts.get("dbname") or os.environ.get("PGDATABASE") or user)
    return _Endpoint(host=hosts[0], port=port, dbname=dbname)


def plan_servers(state: DesiredState) -> list[ServerPlan]:
    """Pure: the local servers the state needs, one per port, sorted by port.

    A node counts when its `dsn` (or else its `admin_dsn`) points at this
    machine. Nodes of different levels on one port are refused: pglogical's
    forwarding apply worker segfaults a server that holds two tiers
    (REPLICATION-NOTES "Every tier on its own PostgreSQL server").
    """
    by_port: dict[int, list[tuple[str, _Endpoint]]] = {}
    for name, node in sorted(state.nodes.items()):
        endpoint = _local_endpoint(node.dsn)
        if endpoint is None and node.admin_dsn is not None:
            endpoint = _local_endpoint(node.admin_dsn)
        if endpoint is not None:
            by_port.setdefault(endpoint.port, []).append((name, endpoint))
    plans = []
    for port, members in sorted(by_port.items()):
        levels = sorted({state.nodes[name].level for name, _ in members})
        if len(levels) > 1:
            detail = ", ".join(f"{name} ({state.nodes[name].level})" for name, _ in members)
            raise SandboxError(
                f"nodes of different levels would share the server on port {port}: {detail}; "
                "pglogical crashes a server that holds two tiers, give each level its own port"
            )
        seen: dict[str, str] = {}
        for name, endpoint in members:
            if endpoint.dbname in seen:
                raise SandboxError(
                    f"nodes {seen[endpoint.dbname]} and {name} both use database "
                    f"{endpoint.dbname!r} on port {port}; a pglogical node is a database"
                )
            seen[endpoint.dbname] = name
        hosts = {endpoint.host for _, endpoint in members}
        plans.append(
            ServerPlan(
                port=port,
                level=levels[0],
                databases=tuple(
                    sorted((DatabasePlan(e.dbname, n) for n, e in members), key=lambda d: d.dbname)
                ),
                listen=("127.0.0.1", "::1") if "::1" in hosts else ("127.0.0.1",),
                socket_dirs=tuple(
                    sorted({h if h else DEFAULT_SOCKET_DIR for h in hosts if not h or h[0] == "/"})
                ),
            )
        )
    return plans


def server_dir(data_dir: Path, port: int) -> Path:
    """The data directory of the server on `port`."""
    return data_dir / str(port)


def up(state: DesiredState, data_dir: Path, schema: Path | None = None) -> list[ServerReport]:
    """Start every local server of the state and create its node databases.

    Idempotent: running servers and existing databases are left alone; the
    schema file runs on every node database each time (it must be idempotent).
    """
    plans = plan_servers(state)
    if not plans:
        raise SandboxError("no node of the desired state points at this machine")
    try:
        schema_sql = schema.read_text() if schema is not None else None
    except OSError as exc:
        raise SandboxError(f"cannot read schema file {schema}: {exc.strerror}") from exc
    reports = []
    for plan in plans:
        pgdata = server_dir(data_dir, plan.port)
        done = ensure_server(plan.port, pgdata, listen=plan.listen, extra_socket_dirs=plan.socket_dirs)
        created = tuple(
            db.dbname for db in plan.databases if create_database(plan.port, db.dbname, schema_sql)
        )
        reports.append(ServerReport(plan, pgdata, done, created))
    return reports


def down(state: DesiredState, data_dir: Path) -> list[ServerPlan]:
    """Stop every local server of the state and delete its data directory."""
    plans = plan_servers(state)
    for plan in plans:
        remove_server(server_dir(data_dir, plan.port))
    if data_dir.is_dir() and not any(data_dir.iterdir()):
        data_dir.rmdir()
    return plans


def status(state: DesiredState, data_dir: Path) -> list[ServerStatus]:
    """Per local server: data directory, running or not, which node databases exist."""
    result = []
    for plan in plan_servers(state):
        pgdata = server_dir(data_dir, plan.port)
        running = is_running(pgdata)
        existing: tuple[str, ...] = ()
        if running:
            names = existing_databases(plan.port, (db.dbname for db in plan.databases))
            existing = tuple(sorted(names))
        result.append(ServerStatus(plan, pgdata, running, existing, data_exists=pgdata.is_dir()))
    return result
