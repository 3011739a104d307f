"""One local PostgreSQL 15 + pglogical server of the sandbox: initdb, configure, start, stop, connect."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import psycopg
from psycopg import sql

from reconciler.errors import SandboxError

DEFAULT_PG_BIN = Path("/usr/lib/postgresql/15/bin")
INSTALL_HINT = "apt-get install -y postgresql-15 postgresql-15-pglogical"
SERVER_USER = "postgres"  # the database superuser every sandbox DSN uses
# The OS user the servers run as when we are root: initdb and postgres refuse root.
OS_USER_WHEN_ROOT = "postgres"
# A unix socket path must fit in sockaddr_un.sun_path (108 bytes, NUL included).
MAX_SOCKET_PATH = 100
# Sized for test sessions that keep dozens of pglogical databases on one server:
# pglogical runs one manager worker per database plus one apply worker per
# subscription, and every subscription holds a walsender and a slot upstream.
SETTINGS: tuple[tuple[str, str], ...] = (
    ("wal_level", "logical"),
    ("shared_preload_libraries", "'pglogical'"),
    ("track_commit_timestamp", "on"),
    ("max_connections", "300"),
    ("max_worker_processes", "256"),
    ("max_replication_slots", "128"),
    ("max_wal_senders", "128"),
    # Native subscriptions: one apply worker each, plus table-sync workers
    # during initial copies (the default of 4 starves a shared test server).
    ("max_logical_replication_workers", "64"),
    # Throwaway servers: losing them on an OS crash is fine, speed matters.
    # synchronous_commit stays on: with it off, pg_current_wal_lsn() trails a
    # commit by up to wal_writer_delay and lag readings right after a write
    # are 0.
    ("fsync", "off"),
    ("full_page_writes", "off"),
    # `reconcile status` reads the tail of the current log file to say why a
    # subscription is down (pglogical writes its apply errors only there);
    # pg_current_logfile() names a file only with the logging collector on.
    ("logging_collector", "on"),
    ("log_line_prefix", "'%m [%p] '"),
)
# Some PostgreSQL 15 builds (this project's machines) only let logical slots
# use the output plugins listed here; pglogical's apply worker then fails with
# 'library "pglogical_output" may not be used as an output plugin'. Set only
# where the server knows the parameter: elsewhere it would refuse to start.
PLUGIN_SETTING = ("output_plugin_libraries", "'pgoutput, test_decoding, pglogical_output'")
HBA = """\
# Written by `reconcile sandbox`: loopback only, no passwords.
local   all          all                 trust
local   replication  all                 trust
host    all          all   127.0.0.1/32  trust
host    replication  all   127.0.0.1/32  trust
host    all          all   ::1/128       trust
host    replication  all   ::1/128       trust
"""


def pg_bin() -> Path:
    """Directory of the PostgreSQL 15 binaries ($RECONCILE_PG_BIN overrides)."""
    path = Path(os.environ.get("RECONCILE_PG_BIN", str(DEFAULT_PG_BIN)))
    if not (path / "initdb").exists():
        raise SandboxError(f"PostgreSQL 15 binaries not found in {path}; install them: {INSTALL_HINT}")
    return path


def _as_server_user(args: Sequence[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", OS_USER_WHEN_ROOT, "--", *args]
    return list(args)


def _run(args: Sequence[str], what: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        _as_server_user(args), capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise SandboxError(f"{what} failed (exit {proc.returncode}): " + " | ".join(detail))
    return proc


def admin_conninfo(port: int, dbname: str = "postgres") -> str:
    """How the sandbox itself reaches a database of one of its servers."""
    return psycopg.conninfo.make_conninfo(
        host="127.0.0.1", port=str(port), dbname=dbname, user=SERVER_USER, connect_timeout="10"
    )


def connect(port: int, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
    """The sandbox's own admin connection, deliberately not db.connect.

    It only ever reaches 127.0.0.1 on a port whose server the sandbox started
    from its own data directory (ensure_server refuses a port anything else
    holds; status asks only servers running from it), as the superuser its
    initdb created with trust authentication: no DSN of the desired state and
    no password is involved.
    """
    try:
        return psycopg.connect(admin_conninfo(port, dbname), autocommit=True)
    except psycopg.OperationalError as exc:
        raise SandboxError(f"cannot connect to database {dbname!r} on port {port}: {exc}") from exc


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something listens on host:port (binding as the server would fails)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # PostgreSQL binds with SO_REUSEADDR; do the same so TIME_WAIT does not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def is_running(pgdata: Path) -> bool:
    """Whether a postmaster runs on this data directory (pg_ctl status)."""
    if not (pgdata / "PG_VERSION").exists():
        return False
    proc = subprocess.run(
        _as_server_user([str(pg_bin() / "pg_ctl"), "status", "-D", str(pgdata)]),
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode == 0


def _check_reachable(path: Path) -> None:
    """As root, the server runs as `postgres`: every ancestor must be searchable by it."""
    if os.geteuid() != 0:
        return
    for ancestor in [path, *path.parents]:
        if not ancestor.exists():
            continue
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise SandboxError(
                f"the {OS_USER_WHEN_ROOT!r} OS user that runs the servers cannot reach "
                f"{path}: {ancestor} is not searchable by others; choose another data "
                "directory (e.g. --data-dir /tmp/reconcile-sandbox)"
            )


def _known_parameters(bindir: Path) -> set[str]:
    proc = _run([str(bindir / "postgres"), "--describe-config"], "postgres --describe-config")
    return {line.split("\t", 1)[0] for line in proc.stdout.splitlines()}


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _write_config(
    bindir: Path, pgdata: Path, port: int, listen: Sequence[str], sockets: Sequence[str]
) -> None:
    settings = list(SETTINGS)
    if PLUGIN_SETTING[0] in _known_parameters(bindir):
        settings.append(PLUGIN_SETTING)
    lines = [
        "",
        "# Added by `reconcile sandbox` (settings a pglogical node needs).",
        f"listen_addresses = {_quote(','.join(listen))}",
        f"port = {port}",
        f"unix_socket_directories = {_quote(','.join(sockets))}",
        *(f"{name} = {value}" for name, value in settings),
        "",
    ]
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write("\n".join(lines))
    (pgdata / "pg_hba.conf").write_text(HBA)


def _socket_dirs(pgdata: Path, port: int, extra: Iterable[str]) -> list[str]:
    dirs = []
    # The socket lives in the data directory so that servers never collide in
    # /var/run/postgresql; skipped when the path would not fit in sun_path.
    if len(f"{pgdata}/.s.PGSQL.{port}") <= MAX_SOCKET_PATH:
        dirs.append(str(pgdata))
    # Extra directories (libpq's default one, for DSNs without host) only
    # where the server may create its socket; one failing directory would
    # stop it from starting.
    dirs.extend(d for d in extra if os.geteuid() == 0 or os.access(d, os.W_OK))
    return dirs


def ensure_server(
    port: int,
    pgdata: Path,
    *,
    listen: Sequence[str] = ("127.0.0.1",),
    extra_socket_dirs: Sequence[str] = (),
) -> str:
    """Make sure our server runs on `port` from `pgdata`; returns what was done.

    "running" (left alone), "started" (existing data directory) or "created".
    Refuses when the port is taken by anything else than this data directory.
    """
    if is_running(pgdata):
        return "running"
    bindir = pg_bin()
    for host in listen:
        if port_in_use(port, host):
            raise SandboxError(
                f"port {port} on {host} is already in use by another program "
                f"(not the sandbox server of {pgdata}); stop it or choose another port"
            )
    pgdata = pgdata.absolute()
    _check_reachable(pgdata.parent)
    created = not (pgdata / "PG_VERSION").exists()
    if created:
        if pgdata.exists() and any(pgdata.iterdir()):
            raise SandboxError(f"{pgdata} exists, is not empty and holds no PostgreSQL data")
        pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(pgdata, OS_USER_WHEN_ROOT, OS_USER_WHEN_ROOT)
        _run(
            [
                str(bindir / "initdb"),
                "-D", str(pgdata),
                "-U", SERVER_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            f"initdb for port {port}",
        )  # fmt: skip
        _write_config(bindir, pgdata, port, listen, _socket_dirs(pgdata, port, extra_socket_dirs))
    _run(
        [
            str(bindir / "pg_ctl"),
            "start", "-w", "-t", "60",
            "-D", str(pgdata),
            "-l", str(pgdata / "server.log"),
        ],
        f"starting the server on port {port} (log: {pgdata / 'server.log'})",
    )  # fmt: skip
    if created:
        with connect(port) as conn:
            # pglogical's supervisor starts a manager worker in every database
            # that allows connections, template1 included; a manager connected
            # there makes a concurrent CREATE DATABASE fail ("source database
            # is being accessed by other users"). Nobody needs to log into it.
            conn.execute(sql.SQL("ALTER DATABASE template1 ALLOW_CONNECTIONS false"))
    return "created" if created else "started"


def stop_server(pgdata: Path) -> bool:
    """Stop (fast) the server of `pgdata` if it runs; True when it did run."""
    if not is_running(pgdata):
        return False
    _run(
        [str(pg_bin() / "pg_ctl"), "stop", "-w", "-t", "60", "-m", "fast", "-D", str(pgdata)],
        f"stopping the server of {pgdata}",
    )
    return True


def remove_server(pgdata: Path) -> None:
    """Stop the server and delete its data directory."""
    stop_server(pgdata)
    if pgdata.exists():
        shutil.rmtree(pgdata)
