"""One path from action to SQL: what an engine's execute sends to the node is exactly its statements(action).

Each action type of each engine runs on real servers through a connection
that records every statement composed with psycopg.sql (the engine's writes;
its catalog reads are text from .sql files and are not recorded). A second
run of the same action finds it done and sends nothing. Every action type is
covered: run here, or refused by `supports` with a reason (a plan-time
blocker), never an apply-time surprise.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from ruamel.yaml import YAML

from reconciler.actions import (
    Action,
    AddTable,
    AlterSet,
    AlterSubscription,
    ChangeNodeDsn,
    CreateHeartbeat,
    CreateNode,
    CreateSet,
    CreateSubscription,
    DropNode,
    DropSet,
    DropSlot,
    DropSubscription,
    RefreshSubscription,
    RemoveTable,
    ReplaceSubscription,
    ReplaceTable,
    RestartSubscription,
    RunMigration,
    SetReplicaIdentity,
    SetWalKeepSize,
    SwitchSubscription,
)
from reconciler.engines import Engine, Result
from reconciler.engines import native as native_engine
from reconciler.engines import pglogical as pglogical_engine
from reconciler.inspect import inspect_node, native_point
from reconciler.inspect.native import ALL_TABLES
from reconciler.load import load_desired_state
from reconciler.model import Migration, NodeCatalog, ReplicationSet, SetTable, Subscription
from reconciler.topology import desired_catalogs
from tests.support import wait_for

SMALL = {"region": None, "d1": "region"}
LEVELS = ("district", "region")
KINDS = {cls.model_fields["kind"].default for cls in typing.get_args(typing.get_args(Action)[0])}
ADD_SUMMARY = Migration(
    id=1,
    name="0001_add_summary",
    checksum="a1",
    statements=("ALTER TABLE public.technology ADD COLUMN summary text",),
    text="ALTER TABLE public.technology ADD COLUMN summary text;\n",
)
DROP_SUMMARY = Migration(
    id=2,
    name="0002_drop_summary",
    checksum="b2",
    statements=("ALTER TABLE public.technology DROP COLUMN summary",),
    text="-- reconcile: leaves-first\nALTER TABLE public.technology DROP COLUMN summary;\n",
    leaves_first=True,
)


class Recording(psycopg.Connection[Any]):
    """A connection that keeps every psycopg.sql statement it is asked to execute."""

    sent: list[sql.Composable]

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if isinstance(query, sql.Composable):
            self.sent.append(query)
        return super().execute(query, *args, **kwargs)


def recording(dsn: str) -> Recording:
    # Bounded: a statement that waits for ever fails the test instead of hanging CI.
    conn = Recording.connect(dsn, autocommit=True, options="-c statement_timeout=60000")
    conn.sent = []
    return conn


def check_one_path(
    engine: Engine,
    net: Any,
    action: Action,
    provider_conn: Callable[[str], psycopg.Connection[Any] | None] | None = None,
    expected: list[sql.Composed] | None = None,
) -> None:
    """Run `action` twice: the first sends exactly its statements (or `expected`), the second nothing."""
    with recording(net.dsn(action.node)) as conn:
        outcome = engine.execute(conn, action, provider_conn=provider_conn)
        assert outcome.result is Result.DONE, (action, str(outcome))
        assert conn.sent == (engine.statements(action) if expected is None else expected), action
    # A new session, as the next apply has (a reloaded setting shows in new sessions at once).
    with recording(net.dsn(action.node)) as conn:
        again = engine.execute(conn, action, provider_conn=provider_conn)
        assert again.result is Result.ALREADY, (action, str(again))
        assert conn.sent == [], action


def normalised(net: Any) -> dict[str, NodeCatalog]:
    """The desired catalogs with filters in each node's normal form, as the diff gets them."""
    derived = desired_catalogs(net.state)
    return {node: inspect_node(net.state, node, derived[node]).desired for node in derived}


def providers(net: Any) -> Callable[[str], psycopg.Connection[Any] | None]:
    return lambda node: net.connect(node)


def apply_workers(net: Any, node: str) -> int:
    rows = net.execute(
        node,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE backend_type LIKE 'pglogical apply%' AND datname = current_database()",
    )
    return int(rows[0][0])


def hand_made_slot(net: Any, node: str, name: str) -> None:
    net.execute(node, "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))


@pytest.fixture
def reset_wal_keep_size(pg_servers: Any) -> Iterator[None]:
    """The servers are shared by every test: their WAL limit is reset whatever happens."""
    yield
    for index in range(len(pg_servers.ports)):
        with psycopg.connect(pg_servers.dsn(index), autocommit=True) as admin:
            admin.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
            admin.execute("SELECT pg_reload_conf()")


def covered(engine: Engine, ran: set[str], switch: bool = False) -> None:
    """Every action type is run by this test, or refused at plan time with a reason."""
    refused = {k for k in KINDS if engine.supports(_sample(k)) is not None}
    skipped = {"switch_subscription"} if switch else set()
    assert ran | refused | skipped == KINDS, KINDS - ran - refused - skipped
    assert not ran & refused


def _sample(kind: str) -> Action:
    sub = Subscription(
        name="s", provider_node="p", provider_dsn="host=p", replication_sets=("x",), forward_origins=()
    )
    samples: dict[str, Action] = {
        "create_node": CreateNode(node="n", name="n", dsn="host=n"),
        "change_node_dsn": ChangeNodeDsn(node="n", name="n", before="host=a", after="host=b"),
        "drop_node": DropNode(node="n", name="m"),
        "set_wal_keep_size": SetWalKeepSize(node="n", before="-1", after="1GB"),
        "create_set": CreateSet(node="n", set=ReplicationSet(name="x")),
        "alter_set": AlterSet(
            node="n", name="x", before=ReplicationSet(name="x"), after=ReplicationSet(name="x")
        ),
        "drop_set": DropSet(node="n", name="x"),
        "add_table": AddTable(node="n", set_name="x", table="public.t", spec=SetTable()),
        "replace_table": ReplaceTable(
            node="n", set_name="x", table="public.t", before=SetTable(), after=SetTable()
        ),
        "remove_table": RemoveTable(node="n", set_name="x", table="public.t"),
        "create_subscription": CreateSubscription(node="n", subscription=sub),
        "replace_subscription": ReplaceSubscription(node="n", before=sub, after=sub),
        "alter_subscription": AlterSubscription(node="n", before=sub, after=sub),
        "drop_subscription": DropSubscription(node="n", name="s", provider_node="p"),
        "drop_slot": DropSlot(node="n", slot="x"),
        "set_replica_identity": SetReplicaIdentity(
            node="n", table="public.t", before="default", after="full"
        ),
        "switch_subscription": SwitchSubscription(node="n", before=sub, after=sub),
        "refresh_subscription": RefreshSubscription(node="n", name="s", provider_node="p"),
        "restart_subscription": RestartSubscription(node="n", name="s", provider_node="p"),
        "run_migration": RunMigration(node="n", migration=ADD_SUMMARY),
        "create_heartbeat": CreateHeartbeat(node="n", providers=("p",)),
    }
    return samples[kind]


def test_every_action_type_is_run_or_refused_with_a_reason() -> None:
    """Pure: an engine's statements() raises exactly for the actions supports() refuses."""
    for engine in (pglogical_engine, native_engine):
        for kind in sorted(KINDS):
            action = _sample(kind)
            reason = engine.supports(action)
            if reason is None:
                engine.statements(action)
            else:
                assert action.kind in reason or "engine" in reason, reason
                with pytest.raises(Exception, match=action.kind):
                    engine.statements(action)
    assert native_engine.supports(_sample("set_wal_keep_size")) is None  # the SetWalKeepSize bug
    assert native_engine.supports(_sample("create_node")) is not None
    assert pglogical_engine.supports(_sample("refresh_subscription")) is not None


@pytest.mark.server
def test_pglogical_execute_runs_exactly_its_statements(network: Any, reset_wal_keep_size: None) -> None:
    net = network(parents=SMALL, levels=LEVELS)
    engine = pglogical_engine
    ran: set[str] = set()

    def run(action: Action, **kwargs: Any) -> None:
        check_one_path(engine, net, action, **kwargs)
        ran.add(action.kind)

    for node in ("d1", "region"):
        run(CreateNode(node=node, name=node, dsn=net.dsn(node)))
    catalogs = normalised(net)
    wanted = catalogs["d1"].sets["approved"]
    run(CreateSet(node="d1", set=wanted.model_copy(update={"replicate_delete": False})))
    run(
        AlterSet(
            node="d1",
            name="approved",
            before=wanted.model_copy(update={"replicate_delete": False}),
            after=wanted,
        )
    )
    spec = wanted.tables["public.technology"]
    run(AddTable(node="d1", set_name="approved", table="public.technology", spec=spec))
    narrower = SetTable(row_filter="((approved AND (district <> 'hidden'::text)) IS NOT FALSE)")
    run(ReplaceTable(node="d1", set_name="approved", table="public.technology", before=spec, after=narrower))
    for table, other in wanted.tables.items():
        if table != "public.technology":
            run(AddTable(node="d1", set_name="approved", table=table, spec=other))
    for node in ("region", "d1"):
        run(RunMigration(node=node, migration=ADD_SUMMARY))
        run(CreateHeartbeat(node=node))

    (sub,) = catalogs["region"].subscriptions.values()
    run(CreateSubscription(node="region", subscription=sub), provider_conn=providers(net))
    # A worker stopped by hand is started again; one that runs is left alone.
    net.execute("region", "SELECT pglogical.alter_subscription_disable(%s, immediate := true)", (sub.name,))
    wait_for(lambda: not apply_workers(net, "region"), "the stopped subscription's worker to exit")
    run(RestartSubscription(node="region", name=sub.name, provider_node="d1"))
    moved = sub.model_copy(
        update={"provider_dsn": f"{net.dsn('d1')} application_name=moved", "enabled": False}
    )
    run(AlterSubscription(node="region", before=sub, after=moved), provider_conn=providers(net))
    # The worker is still stopping after the disable (no `immediate` in a
    # transaction): the replace stops it and waits before its drop (a drop
    # that waits for a worker blocked on the drop's own locks never ends).
    forwarding = moved.model_copy(update={"forward_origins": ("all",), "enabled": True})
    run(ReplaceSubscription(node="region", before=moved, after=forwarding), provider_conn=providers(net))
    run(DropSubscription(node="region", name=sub.name, provider_node="d1"), provider_conn=providers(net))
    assert apply_workers(net, "region") == 0  # stopped before the drop, so the drop never waited

    hand_made_slot(net, "d1", "reconcile_paths_slot")
    run(DropSlot(node="d1", slot="reconcile_paths_slot"))
    run(RemoveTable(node="d1", set_name="approved", table="public.technology"))
    run(DropSet(node="d1", name="approved"))
    run(
        ChangeNodeDsn(node="d1", name="d1", before=net.dsn("d1"), after=f"{net.dsn('d1')} application_name=x")
    )
    run(DropNode(node="d1", name="d1"))
    run(SetWalKeepSize(node="region", before="-1", after="64MB"))
    covered(engine, ran)


@pytest.mark.server
def test_native_execute_runs_exactly_its_statements(network: Any, reset_wal_keep_size: None) -> None:
    net = network(parents=SMALL, levels=LEVELS)
    path = Path(net.dir) / "topology.yaml"
    yaml = YAML(typ="safe")
    data = yaml.load(path.read_text())
    data["engine"] = "native"
    with path.open("w") as out:
        yaml.dump(data, out)
    net.state = load_desired_state(net.dir)
    engine = native_engine
    ran: set[str] = set()

    def run(action: Action, **kwargs: Any) -> None:
        check_one_path(engine, net, action, **kwargs)
        ran.add(action.kind)

    catalogs = normalised(net)
    wanted = catalogs["d1"].sets["approved"]
    limited = wanted.model_copy(update={"replicate_delete": False})
    run(CreateSet(node="d1", set=limited))
    run(AlterSet(node="d1", name="approved", before=limited, after=wanted))
    run(SetReplicaIdentity(node="d1", table="public.technology", before="default", after="full"))
    for table, spec in sorted(wanted.tables.items()):
        run(AddTable(node="d1", set_name="approved", table=table, spec=spec))
    spec = wanted.tables["public.technology"]
    columns = spec.model_copy(update={"columns": ("approved", "district", "id", "title")})
    run(ReplaceTable(node="d1", set_name="approved", table="public.technology", before=spec, after=columns))

    (sub,) = catalogs["region"].subscriptions.values()
    run(CreateSubscription(node="region", subscription=sub, copy_data=False))
    for node in ("region", "d1"):
        run(RunMigration(node=node, migration=ADD_SUMMARY))
        run(CreateHeartbeat(node=node))
    # Leaves first: d1, then the region once d1's slot for it confirmed d1's position.
    run(RunMigration(node="d1", migration=DROP_SUMMARY))
    run(
        RunMigration(node="region", migration=DROP_SUMMARY, after=("d1",), providers=(("d1", sub.name),)),
        provider_conn=providers(net),
    )
    net.execute("region", sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sql.Identifier(sub.name)))
    with psycopg.connect(net.dsn("region"), autocommit=True) as plain:
        wait_for(lambda: not native_point.apply_worker_running(plain, sub.name), "the apply worker to exit")
    run(RestartSubscription(node="region", name=sub.name, provider_node="d1"))
    with recording(net.dsn("region")) as conn:
        refresh = RefreshSubscription(node="region", name=sub.name, provider_node="d1")
        assert engine.execute(conn, refresh).result is Result.DONE
        assert conn.sent == engine.statements(refresh)  # a refresh is never "already done"
        ran.add(refresh.kind)
    disabled = sub.model_copy(update={"enabled": False})
    run(AlterSubscription(node="region", before=sub, after=disabled))
    run(ReplaceSubscription(node="region", before=disabled, after=sub), provider_conn=providers(net))
    run(DropSubscription(node="region", name=sub.name, provider_node="d1"), provider_conn=providers(net))

    hand_made_slot(net, "d1", "reconcile_paths_slot")
    run(DropSlot(node="d1", slot="reconcile_paths_slot"))
    run(RemoveTable(node="d1", set_name="approved", table="public.technology"))
    run(DropSet(node="d1", name="approved"))
    run(SetWalKeepSize(node="d1", before="-1", after="64MB"))

    # A FOR ALL TABLES publication cannot be narrowed: re-created empty, as statements() says.
    net.execute("d1", "CREATE PUBLICATION everything FOR ALL TABLES")
    with psycopg.connect(net.dsn("d1"), autocommit=True) as plain:
        pub = native_point.publication(plain, "everything")
    assert pub is not None and pub.all_tables
    everything = RemoveTable(node="d1", set_name="everything", table=ALL_TABLES)
    check_one_path(engine, net, everything, expected=engine.statements(everything, recreate=pub.set))
    assert len(engine.statements(everything, recreate=pub.set)) == 2 and engine.statements(everything) == []
    covered(engine, ran, switch=True)
