"""The sandbox: planning (pure), real servers up/status/down, robust drops, and the test fixtures."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from reconciler import sandbox
from reconciler.cli import app
from reconciler.errors import SandboxError
from reconciler.model import DesiredState, NodeDecl, SetDecl, TableDecl
from reconciler.sandbox_databases import drop_database
from reconciler.sandbox_server import admin_conninfo, port_in_use

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "desired-state" / "sandbox-schema.sql"
SETS = {"approved": SetDecl(tables={"public.technology": TableDecl(row_filter="approved")})}


def _state(nodes: dict[str, tuple[str, str | None, str]]) -> DesiredState:
    """name -> (level, upstream, dsn)."""
    return DesiredState(
        version=1,
        nodes={n: NodeDecl(level=lv, upstream=up, dsn=dsn) for n, (lv, up, dsn) in nodes.items()},
        replication_sets=SETS,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------
# pure planning
# --------------------------------------------------------------------------


def test_plan_groups_local_nodes_by_port_and_skips_remote_ones() -> None:
    state = _state(
        {
            "nation": ("nation", None, "host=10.1.0.1 port=5432 dbname=nation"),
            "region_a": ("region", "nation", "host=localhost port=7001 dbname=ra"),
            "region_b": ("region", "nation", "postgresql://127.0.0.2:7001/rb"),
            "district_a": ("district", "region_a", "host=::1 port=7002 dbname=da"),
            "district_b": ("district", "region_b", "port=7002 dbname=db"),
        }
    )
    plans = sandbox.plan_servers(state)
    assert [(p.port, p.level, p.nodes) for p in plans] == [
        (7001, "region", ("region_a", "region_b")),
        (7002, "district", ("district_a", "district_b")),
    ]
    assert [db.dbname for db in plans[0].databases] == ["ra", "rb"]
    assert plans[0].listen == ("127.0.0.1",)
    assert plans[1].listen == ("127.0.0.1", "::1")
    # district_b has no host: libpq's default socket directory must be served too.
    assert plans[1].socket_dirs == (sandbox.DEFAULT_SOCKET_DIR,)


def test_plan_uses_admin_dsn_when_only_it_is_local() -> None:
    state = DesiredState(
        version=1,
        nodes={
            "nation": NodeDecl(
                level="nation",
                dsn="host=10.1.0.1 port=5432 dbname=n",
                admin_dsn="host=127.0.0.1 port=7100 dbname=n",
            )
        },
        replication_sets=SETS,
    )
    assert [(p.port, p.nodes) for p in sandbox.plan_servers(state)] == [(7100, ("nation",))]


def test_plan_refuses_two_levels_on_one_port() -> None:
    state = _state(
        {
            "nation": ("nation", None, "host=127.0.0.1 port=7200 dbname=n"),
            "region": ("region", "nation", "host=127.0.0.1 port=7200 dbname=r"),
            "district": ("district", "region", "host=127.0.0.1 port=7201 dbname=d"),
        }
    )
    with pytest.raises(SandboxError) as err:
        sandbox.plan_servers(state)
    message = str(err.value)
    assert "7200" in message
    assert "nation (nation)" in message and "region (region)" in message
    assert "district" not in message


def test_plan_refuses_two_nodes_in_one_database() -> None:
    state = _state(
        {
            "a": ("district", None, "host=127.0.0.1 port=7300 dbname=same"),
            "b": ("district", None, "host=127.0.0.1 port=7300 dbname=same"),
        }
    )
    with pytest.raises(SandboxError, match="same"):
        sandbox.plan_servers(state)


def test_example_desired_state_plans_three_servers() -> None:
    from reconciler.load import load_desired_state

    plans = sandbox.plan_servers(load_desired_state(REPO / "desired-state"))
    assert [(p.port, p.level, len(p.databases)) for p in plans] == [
        (15441, "nation", 1),
        (15442, "region", 2),
        (15443, "district", 4),
    ]


def test_is_local_host() -> None:
    for host in (None, "", "localhost", "127.0.0.1", "127.8.9.10", "::1", "/var/run/postgresql"):
        assert sandbox.is_local_host(host), host
    for host in ("10.0.0.1", "db.example", "192.168.1.1", "::2"):
        assert not sandbox.is_local_host(host), host


# --------------------------------------------------------------------------
# real servers, through the library and the CLI
# --------------------------------------------------------------------------


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="reconcile-sandbox-test-"))
    root.chmod(0o755)  # reachable by the `postgres` OS user when we run as root
    yield root / "sandbox"
    for pgdata in sorted((root / "sandbox").glob("*")):
        sandbox.remove_server(pgdata)
    if root.exists():
        import shutil

        shutil.rmtree(root)


def _two_level_state(port_low: int, port_high: int) -> DesiredState:
    return _state(
        {
            "top": ("region", None, f"host=127.0.0.1 port={port_high} dbname=top"),
            "leaf_a": ("district", "top", f"host=localhost port={port_low} dbname=leaf_a"),
            "leaf_b": ("district", "top", f"host=127.0.0.1 port={port_low} dbname=leaf_b"),
        }
    ).model_copy(update={"levels": ("district", "region")})


def _tables(port: int, dbname: str) -> set[str]:
    with psycopg.connect(admin_conninfo(port, dbname)) as conn:
        rows = conn.execute(
            "SELECT extname FROM pg_extension WHERE extname = 'pglogical' "
            "UNION ALL SELECT 'public.' || tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.server
def test_port_taken_by_another_program_is_refused_naming_the_port(data_dir: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = int(blocker.getsockname()[1])
        state = _state({"solo": ("district", None, f"host=127.0.0.1 port={port} dbname=solo")})
        with pytest.raises(SandboxError, match=f"port {port} "):
            sandbox.up(state, data_dir)
    # Refused before initdb: nothing was left behind.
    assert not (data_dir / str(port)).exists()


@pytest.mark.server
def test_up_twice_status_down(data_dir: Path) -> None:
    low, high = _free_port(), _free_port()
    state = _two_level_state(low, high)
    first = sandbox.up(state, data_dir, SCHEMA)
    assert [(r.plan.port, r.server, r.created_databases) for r in first] == sorted(
        [(low, "created", ("leaf_a", "leaf_b")), (high, "created", ("top",))]
    )
    assert _tables(low, "leaf_a") == {"pglogical", "public.technology", "public.approach"}
    # Required settings of a pglogical node.
    with psycopg.connect(admin_conninfo(high)) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('wal_level', 'track_commit_timestamp', 'shared_preload_libraries', "
                "'listen_addresses')"
            ).fetchall()
        )
    assert settings == {
        "wal_level": "logical",
        "track_commit_timestamp": "on",
        "shared_preload_libraries": "pglogical",
        "listen_addresses": "127.0.0.1",
    }
    with psycopg.connect(admin_conninfo(low, "leaf_a"), autocommit=True) as conn:
        conn.execute("INSERT INTO technology (title, district) VALUES ('kept', 'a')")

    second = sandbox.up(state, data_dir, SCHEMA)
    assert [(r.server, r.created_databases) for r in second] == [("running", ()), ("running", ())]
    with psycopg.connect(admin_conninfo(low, "leaf_a")) as conn:
        assert conn.execute("SELECT title FROM technology").fetchall() == [("kept",)]

    statuses = sandbox.status(state, data_dir)
    assert [(s.plan.port, s.running, s.existing_databases) for s in statuses] == sorted(
        [(low, True, ("leaf_a", "leaf_b")), (high, True, ("top",))]
    )

    sandbox.down(state, data_dir)
    assert not port_in_use(low) and not port_in_use(high)
    assert not data_dir.exists()
    assert [s.running for s in sandbox.status(state, data_dir)] == [False, False]


@pytest.mark.server
def test_cli_up_status_down(data_dir: Path, tmp_path: Path) -> None:
    port = _free_port()
    desired = tmp_path / "desired-state"
    desired.mkdir()
    (desired / "topology.yaml").write_text(
        "version: 1\nlevels: [district, region]\nnodes:\n"
        f"  top:\n    level: region\n    dsn: host=127.0.0.1 port={port} dbname=top\n"
    )
    (desired / "replication.yaml").write_text(
        "replication_sets:\n  approved:\n    tables:\n      public.technology:\n"
        "        row_filter: approved\n"
    )
    runner = CliRunner()
    common = ["-d", str(desired), "--data-dir", str(data_dir)]
    result = runner.invoke(app, ["sandbox", "up", *common, "--schema", str(SCHEMA)])
    assert result.exit_code == 0, result.output
    assert f"port {port} (region): server created" in result.output
    result = runner.invoke(app, ["sandbox", "status", *common])
    assert result.exit_code == 0, result.output
    assert f"port {port} (region): running" in result.output
    assert "top: database top present" in result.output
    result = runner.invoke(app, ["sandbox", "down", *common])
    assert result.exit_code == 0, result.output
    assert not port_in_use(port)
    # After down the data directory is gone: status must not print its path as if it were there.
    result = runner.invoke(app, ["sandbox", "status", *common])
    assert result.exit_code == 0, result.output
    assert f"port {port} (region): not set up (no data directory)" in result.output
    assert str(data_dir) not in result.output
    assert "database top" not in result.output
    result = runner.invoke(app, ["sandbox", "up", *common, "--schema", str(tmp_path / "nope.sql")])
    assert result.exit_code == 1
    assert "cannot read schema file" in result.output


# --------------------------------------------------------------------------
# the fixtures other tests rely on
# --------------------------------------------------------------------------


@pytest.mark.server
def test_network_fixture_lays_levels_on_their_servers(network: Any, pg_servers: Any) -> None:
    net = network()
    assert sorted(net.state.nodes) == [
        "district_a", "district_b", "district_c", "district_d",
        "nation", "region_east", "region_west",
    ]  # fmt: skip
    for name, node in net.state.nodes.items():
        index = net.state.level_index(node.level)
        assert f"port={pg_servers.port(index)} " in net.dsn(name)
        assert net.execute(name, "SELECT current_setting('port')::int") == [(pg_servers.port(index),)]
        tables = net.execute(
            name,
            "SELECT extname FROM pg_extension WHERE extname = 'pglogical' "
            "UNION ALL SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        assert tables == [("approach",), ("pglogical",), ("technology",)]
    assert net.state.nodes["district_c"].upstream == "region_west"
    assert net.state.nodes["nation"].level == "nation"
    assert net.state.replication_sets["approved"].tables["public.technology"].row_filter == ("approved")
    assert net.execute("nation", "CREATE TABLE scratch (id int)") == []


@pytest.mark.server
def test_network_custom_shape_levels_schema_and_sets(network: Any, pg_servers: Any) -> None:
    net = network(
        parents={"top": None, "mid": "top", "low": "mid", "leaf": "low"},
        levels=("l0", "l1", "l2", "l3"),
        schema_sql="CREATE TABLE public.thing (id uuid PRIMARY KEY, ok boolean NOT NULL);",
        sets_yaml="replication_sets:\n  s:\n    tables:\n      public.thing: {row_filter: ok}\n",
    )
    levels = {name: node.level for name, node in net.state.nodes.items()}
    assert levels == {"top": "l3", "mid": "l2", "low": "l1", "leaf": "l0"}
    assert net.execute("leaf", "SELECT current_setting('port')::int") == [(pg_servers.port(0),)]
    assert net.execute("leaf", "SELECT count(*) FROM thing") == [(0,)]
    assert list(net.state.replication_sets) == ["s"]
    other = network(parents={"solo": None}, levels=("a", "b"))
    assert other.dir != net.dir
    assert other.dsn("solo") != net.dsn("top")
    assert other.state.nodes["solo"].level == "b"


@pytest.mark.server
def test_drop_database_with_live_subscription_and_active_slot(network: Any) -> None:
    """A provider with an active pglogical slot and a subscriber both drop, quickly."""
    net = network(parents={"up": None, "down": "up"}, levels=("district", "region"))
    for node in ("up", "down"):
        net.execute(node, "SELECT pglogical.create_node(%s, %s)", (node, net.dsn(node)))
    net.execute("down", "SELECT pglogical.replication_set_add_table('default', 'technology')")
    net.execute(
        "up",
        "SELECT pglogical.create_subscription('sub', %s, forward_origins := '{}')",
        (net.dsn("down"),),
    )
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = net.execute("up", "SELECT status FROM pglogical.show_subscription_status()")
        if status == [("replicating",)]:
            break
        time.sleep(0.1)
    assert status == [("replicating",)]
    down_port = int(psycopg.conninfo.conninfo_to_dict(net.dsn("down"))["port"])
    down_db = str(psycopg.conninfo.conninfo_to_dict(net.dsn("down"))["dbname"])
    with psycopg.connect(admin_conninfo(down_port)) as conn:
        slots = conn.execute(
            "SELECT active FROM pg_replication_slots WHERE database = %s", (down_db,)
        ).fetchall()
    assert slots == [(True,)]
    net.close()
    started = time.monotonic()
    # The provider first, while its slot is active: the hard order.
    drop_database(down_port, down_db)
    # PostgreSQL 15 waits for pglogical's supervisor to absorb a barrier; the
    # wake-up keeps this to seconds instead of up to three minutes.
    assert time.monotonic() - started < 20
    with psycopg.connect(admin_conninfo(down_port)) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (down_db,)).fetchall() == []
        supervisors = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pglogical supervisor'"
        ).fetchall()
    assert supervisors == [(1,)]
