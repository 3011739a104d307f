"""Shared fixtures: real PostgreSQL 15 + pglogical servers (one per level) and throwaway networks.

`pg_servers` (session): one server per level index 0..3, started with the
sandbox code itself on ports $RECONCILE_TEST_PORT_BASE + index (default
25440..25443), stopped and removed at the end of the session.

`network` (function): a factory that lays a topology out on those servers,
one fresh database per node (`t<random>_<node>`, pglogical + schema), writes
a desired-state directory for it and returns a `Network`. Every database it
created is dropped at teardown, with its pglogical subscriptions and slots.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import settings
from psycopg.abc import Params, Query
from ruamel.yaml import YAML

from reconciler.errors import SandboxError
from reconciler.load import load_desired_state
from reconciler.model import DesiredState
from reconciler.sandbox_databases import create_database, drop_databases
from reconciler.sandbox_server import admin_conninfo, ensure_server, port_in_use, remove_server

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA = REPO / "desired-state" / "sandbox-schema.sql"
DEFAULT_SETS = REPO / "desired-state" / "replication.yaml"
LEVEL_SERVERS = 4  # enough for 4-level topologies; one server per level index
DEFAULT_PORT_BASE = 25440
DEFAULT_LEVELS = ("district", "region", "nation")

# The example network's shape: node -> upstream.
EXAMPLE_PARENTS: dict[str, str | None] = {
    "nation": None,
    "region_east": "nation",
    "region_west": "nation",
    "district_a": "region_east",
    "district_b": "region_east",
    "district_c": "region_west",
    "district_d": "region_west",
}


@dataclass(frozen=True)
class PgServers:
    """The session's servers: `ports[i]` serves level index i (0 = leaf level)."""

    ports: tuple[int, ...]
    data_dir: Path

    def port(self, level_index: int) -> int:
        return self.ports[level_index]

    def dsn(self, level_index: int, dbname: str = "postgres") -> str:
        return admin_conninfo(self.ports[level_index], dbname)


@pytest.fixture(autouse=True)
def filter_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test remembers normalised row filters in a directory of its own (inspect/filter_cache.py)."""
    directory = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(directory))
    return directory


@pytest.fixture(autouse=True)
def no_operator_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the operator configuration of whoever runs it (config.py): defaults unless set."""
    monkeypatch.setenv("RECONCILE_CONFIG", "")


def _port_base() -> int:
    env = os.environ.get("RECONCILE_TEST_PORT_BASE")
    if env:
        return int(env)
    # Several test sessions may run on one machine at once: without an explicit
    # base, step past blocks that another session already holds.
    for base in range(DEFAULT_PORT_BASE, DEFAULT_PORT_BASE + 400, 10):
        if not any(port_in_use(base + i) for i in range(LEVEL_SERVERS)):
            return base
    return DEFAULT_PORT_BASE


# `make test` (and so CI) runs each property test on the same examples every
# time (HYPOTHESIS_PROFILE=repeatable): a fresh clone's run is reproducible.
# Run pytest directly to explore new examples (the default profile).
settings.register_profile("repeatable", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Lines of the session servers' logs saying a backend or worker crashed: printed
# at the end of the run (pytest_terminal_summary), and the run fails, since a
# crash restarts the whole server and a test may only see a lost connection.
SERVER_CRASHES: list[str] = []


def _crashes(pgdata: Path) -> list[str]:
    found: list[str] = []
    for log in sorted((pgdata / "log").glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if "was terminated by signal" in line or "PANIC:" in line:
                found.append(f"{pgdata.name}: {line}")
    return found[:20]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A crash restarts a whole server: never a passing run, whatever the tests saw.
    if SERVER_CRASHES and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SERVER_CRASHES:
        terminalreporter.section("PostgreSQL server crashes during the run")
        for line in SERVER_CRASHES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def pg_servers() -> Iterator[PgServers]:
    base = _port_base()
    root = Path(tempfile.mkdtemp(prefix="reconcile-test-"))
    # As root the servers run as the `postgres` OS user, who must reach them.
    root.chmod(0o755)
    ports = tuple(base + i for i in range(LEVEL_SERVERS))
    dirs = [root / str(port) for port in ports]
    try:
        with ThreadPoolExecutor(max_workers=LEVEL_SERVERS) as pool:
            list(pool.map(ensure_server, ports, dirs))
        yield PgServers(ports=ports, data_dir=root)
    finally:
        for pgdata in dirs:
            SERVER_CRASHES.extend(_crashes(pgdata))
            try:
                remove_server(pgdata)
            except SandboxError as exc:  # keep stopping the others
                print(f"warning: {exc}")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Network:
    """One throwaway topology on the session servers."""

    dir: Path
    state: DesiredState
    dsns: dict[str, str]
    _connections: list[psycopg.Connection[Any]] = field(default_factory=list)
    _cached: dict[str, psycopg.Connection[Any]] = field(default_factory=dict)

    def dsn(self, node: str) -> str:
        return self.dsns[node]

    def connect(self, node: str) -> psycopg.Connection[Any]:
        """A new autocommit connection to the node's database, closed at teardown."""
        conn = psycopg.connect(self.dsns[node], autocommit=True)
        self._connections.append(conn)
        return conn

    def execute(self, node: str, query: Query, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Run one statement on the node (autocommit); its rows, or [] if it returns none."""
        conn = self._cached.get(node)
        if conn is None or conn.closed:
            conn = self._cached[node] = self.connect(node)
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description is not None else []

    def close(self) -> None:
        for conn in self._connections:
            conn.close()
        self._connections.clear()
        self._cached.clear()


def _depths(parents: dict[str, str | None]) -> dict[str, int]:
    depths: dict[str, int] = {}
    for start in parents:
        chain = [start]
        while (up := parents[chain[-1]]) is not None:
            if up not in parents:
                raise ValueError(f"{chain[-1]}: upstream {up!r} is not a node of the network")
            if up in chain:
                raise ValueError(f"cycle through {up!r}")
            chain.append(up)
        depths[start] = len(chain) - 1
    return depths


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    with path.open("w") as out:
        yaml.dump(data, out)


NetworkFactory = Callable[..., Network]


@pytest.fixture
def network(pg_servers: PgServers, tmp_path: Path) -> Iterator[NetworkFactory]:
    made: list[Network] = []
    databases: list[tuple[int, str]] = []

    def make(
        parents: dict[str, str | None] | None = None,
        levels: tuple[str, ...] = DEFAULT_LEVELS,
        sets_yaml: str | None = None,
        schema_sql: str | None = None,
    ) -> Network:
        shape = dict(EXAMPLE_PARENTS if parents is None else parents)
        if len(levels) > len(pg_servers.ports):
            raise ValueError(f"at most {len(pg_servers.ports)} levels (one server per level)")
        depths = _depths(shape)
        top = len(levels) - 1
        if depths and max(depths.values()) > top:
            raise ValueError(f"the network is deeper than its {len(levels)} levels")
        schema = DEFAULT_SCHEMA.read_text() if schema_sql is None else schema_sql
        tag = f"t{secrets.token_hex(3)}"
        nodes: dict[str, dict[str, str]] = {}
        dsns: dict[str, str] = {}
        placed: list[tuple[int, str]] = []
        for node in sorted(shape):
            index = top - depths[node]
            port, dbname = pg_servers.port(index), f"{tag}_{node}"
            placed.append((port, dbname))
            dsns[node] = f"host=127.0.0.1 port={port} dbname={dbname} user=postgres"
            nodes[node] = {"level": levels[index], "dsn": dsns[node]}
            if shape[node] is not None:
                nodes[node]["upstream"] = str(shape[node])
        # Registered before creation: a half-made network is still cleaned up.
        databases.extend(placed)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda pd: create_database(pd[0], pd[1], schema), placed))
        directory = tmp_path / f"desired-state-{len(made)}"
        directory.mkdir()
        _write_yaml(
            directory / "topology.yaml",
            {"version": 1, "engine": "pglogical", "levels": list(levels), "nodes": nodes},
        )
        sets = DEFAULT_SETS.read_text() if sets_yaml is None else sets_yaml
        (directory / "replication.yaml").write_text(sets)
        net = Network(dir=directory, state=load_desired_state(directory), dsns=dsns)
        made.append(net)
        return net

    yield make
    for net in made:
        net.close()
    drop_databases(databases)
