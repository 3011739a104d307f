"""The native engine (PostgreSQL 15 publications and subscriptions) on real servers.

Convergence (apply, re-plan empty), replication through every level, replica
identity planned before a filtered table is published, drift of a publication
filter repaired as one change, a subscription dropped while its provider is
down (its slot then shows as an orphan), and no password in any output.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner, Result

from reconciler.cli import app
from reconciler.load import load_desired_state

SMALL: dict[str, str | None] = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def use_engine(net: Any, engine: str) -> None:
    """Rewrite the network's topology.yaml with `engine:` and reload its state."""
    path = Path(net.dir) / "topology.yaml"
    yaml = YAML(typ="safe")
    data = yaml.load(path.read_text())
    data["engine"] = engine
    with path.open("w") as out:
        yaml.dump(data, out)
    net.state = load_desired_state(net.dir)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def plan_json(net: Any) -> dict[str, Any]:
    result = cli("plan", "-d", str(net.dir), "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def kinds(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a["node"], a["kind"], a["subject"]) for a in document["actions"]]


def apply(net: Any, *extra: str) -> Result:
    result = cli("apply", "-d", str(net.dir), "--auto-approve", *extra)
    assert result.exit_code == 0, result.output
    return result


def native_network(network: Any, parents: dict[str, str | None] | None = None) -> Any:
    net = network(parents=SMALL if parents is None else parents)
    use_engine(net, "native")
    return net


def tech(net: Any, node: str, title: str, approved: bool) -> str:
    key = str(uuid.uuid4())
    net.execute(
        node,
        "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, %s, %s, %s)",
        (key, title, node, approved),
    )
    return key


def has_row(net: Any, node: str, key: str) -> bool:
    return bool(net.execute(node, "SELECT count(*) FROM public.technology WHERE id = %s", (key,))[0][0])


def subscriptions_ready(net: Any, node: str) -> bool:
    """Every native subscription of the node has a worker and every table finished its copy."""
    rows = net.execute(
        node,
        "SELECT count(*) FILTER (WHERE w.pid IS NULL),"
        " (SELECT count(*) FROM pg_subscription_rel r WHERE r.srsubstate <> 'r')"
        " FROM pg_subscription s LEFT JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL"
        " WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    return rows[0] == (0, 0)


@pytest.mark.server
def test_native_converges_and_replicates(network: Any) -> None:
    net = native_network(network)
    first = plan_json(net)
    found = kinds(first)
    # Replica identity before the table joins a publication (phase order).
    d1 = [k for n, k, _ in found if n == "d1"]
    assert d1.index("set_replica_identity") < d1.index("add_table")
    assert ("region", "create_subscription", "subscription region_from_d1") in found
    assert not any(k in ("create_node",) for _, k, _ in found)
    apply(net)
    again = cli("plan", "-d", str(net.dir), "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes" in again.stdout or "in sync" in again.stdout.lower(), again.stdout

    identities = net.execute(
        "d1",
        "SELECT relname, relreplident FROM pg_class WHERE relname IN ('technology', 'approach') ORDER BY 1",
    )
    # An index on key + filter columns: FULL would not be covered by approach's column list.
    assert identities == [("approach", "i"), ("technology", "i")]
    wait_for(
        lambda: subscriptions_ready(net, "region") and subscriptions_ready(net, "nation"), "subscriptions"
    )

    approved = tech(net, "d1", "terraces", True)
    draft = tech(net, "d2", "guess", False)
    wait_for(lambda: has_row(net, "nation", approved), "an approved row to reach the nation")
    assert not has_row(net, "region", draft) and not has_row(net, "nation", draft)
    # Approving a draft arrives as an INSERT upstream (native row filters).
    net.execute("d2", "UPDATE public.technology SET approved = true WHERE id = %s", (draft,))
    wait_for(lambda: has_row(net, "nation", draft), "an approval to reach the nation")
    # Withdrawing arrives as a DELETE.
    net.execute("d1", "UPDATE public.technology SET approved = false WHERE id = %s", (approved,))
    wait_for(lambda: not has_row(net, "nation", approved), "a withdrawal to reach the nation")


@pytest.mark.server
def test_native_drift_of_a_publication_filter_is_one_change(network: Any) -> None:
    net = native_network(network, {"nation": None, "region": "nation", "d1": "region"})
    apply(net)
    net.execute(
        "d1",
        "ALTER PUBLICATION approved SET TABLE public.technology WHERE (NOT approved),"
        " public.approach (id, title, status, district, updated_at) WHERE (status = 'approved')",
    )
    drift = plan_json(net)
    assert kinds(drift) == [("d1", "replace_table", "table approved/public.technology")]
    assert drift["actions"][0]["after"]["row_filter"] == "approved"
    apply(net)
    assert cli("plan", "-d", str(net.dir), "--detailed-exitcode").exit_code == 0
    assert net.execute(
        "d1",
        "SELECT pg_get_expr(prqual, prrelid) FROM pg_publication_rel WHERE prrelid = 'public.technology'::regclass",
    ) == [("approved",)]


@pytest.mark.server
def test_native_drop_while_provider_is_down_leaves_an_orphan_slot_until_cleaned(network: Any) -> None:
    net = native_network(network, {"nation": None, "region": "nation", "d1": "region"})
    apply(net)
    # A subscription nobody declared, with its slot on d1.
    d1 = net.dsn("d1")
    net.execute(
        "region",
        f"CREATE SUBSCRIPTION stray CONNECTION '{d1} password=hunter2' PUBLICATION approved"
        " WITH (copy_data = false)",
    )
    drift = plan_json(net)
    assert kinds(drift) == [("region", "drop_subscription", "subscription stray")]
    assert "hunter2" not in json.dumps(drift)
    dbname = net.execute("d1", "SELECT current_database()")[0][0]
    server = psycopg.connect(net.dsn("d1").replace(f"dbname={dbname}", "dbname=postgres"), autocommit=True)
    # d1 stops answering: new connections refused, its walsenders ended.
    server.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
    server.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,))
    try:
        result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-destroy")
        assert "hunter2" not in result.output
        assert "slot stray left on provider d1" in result.output, result.output
    finally:
        server.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        server.close()
    assert net.execute("region", "SELECT count(*) FROM pg_subscription WHERE subname = 'stray'") == [(0,)]
    orphan = plan_json(net)
    assert kinds(orphan) == [("d1", "drop_slot", "slot stray")]
    status = cli("status", "-d", str(net.dir), "--format", "json")
    assert status.exit_code == 2, status.output
    assert any(s["slot"] == "stray" and s["orphan"] for s in json.loads(status.stdout)["slots"])
    apply(net, "--allow-destroy")
    assert cli("plan", "-d", str(net.dir), "--detailed-exitcode").exit_code == 0


# -- pure: statements, inspection normalisation, diff (no server) --------------


def test_statements_publication_and_subscription() -> None:
    from psycopg import sql

    from reconciler.actions import AddTable, CreateSet, CreateSubscription, SetReplicaIdentity
    from reconciler.engines.native_statements import identity_index_name, statements
    from reconciler.model import ReplicationSet, SetTable, Subscription

    assert statements(CreateSet(node="d1", set=ReplicationSet(name="approved"))) == [
        sql.SQL("CREATE PUBLICATION {name} WITH ({publish})").format(
            name=sql.Identifier("approved"),
            publish=sql.SQL("publish = {}").format(sql.Literal("insert, update, delete")),
        )
    ]
    add = AddTable(
        node="d1",
        set_name="approved",
        table="public.approach",
        spec=SetTable(row_filter="status = 'approved'", columns=("id", "status")),
    )
    [stmt] = statements(add)
    assert "ADD TABLE" in repr(stmt) and "WHERE (" in repr(stmt)
    ident = statements(
        SetReplicaIdentity(node="d1", table="public.approach", before="default", after="index(id,status)")
    )
    name = identity_index_name("public.approach", ("id", "status"))
    assert len(name) <= 63 and name.startswith("approach_reconcile_ri_")
    assert len(ident) == 2 and name in repr(ident[1])
    sub = Subscription(
        name="region_from_d1",
        provider_node="d1",
        provider_dsn="host=h dbname=d1",
        replication_sets=("approved",),
        forward_origins=("all",),
    )
    [create] = statements(CreateSubscription(node="region", subscription=sub))
    assert "copy_data = " in repr(create) and "Literal(True)" in repr(create)
    assert "slot_name = " in repr(create) and "Literal('region_from_d1')" in repr(create)


def test_native_live_catalog_reads_publications_honestly() -> None:
    from reconciler.inspect.facts import ColumnFacts, TableFacts
    from reconciler.inspect.native import ALL_TABLES, SCHEMA_PREFIX, desired_identities, live_catalog
    from reconciler.inspect.request import Request

    request = Request(
        node="region",
        input={"expected_slots": [{"subscription": "nation_from_region"}]},
        probes=(),
        problems=(),
        engine="native",
        providers={"region_from_d1": "d1"},
        dsn_nodes={"host=h dbname=d2": "d2"},
        identity_needs={"public.t": (("approved",), False), "public.k": (("id",), False)},
    )
    native = {
        "publications": [
            {
                "name": "everything",
                "all_tables": True,
                "replicate_insert": True,
                "replicate_update": True,
                "replicate_delete": True,
                "replicate_truncate": True,
                "tables": [],
                "schemas": ["public"],
            }
        ],
        "subscriptions": [
            {
                "name": "region_from_d1",
                "conninfo": "host=h dbname=d1",
                "publications": ["approved"],
                "enabled": True,
                "slot_name": "region_from_d1",
                "synced": True,
            },
            {
                "name": "stray",
                "conninfo": "host=h dbname=d2 password=secret",
                "publications": ["approved"],
                "enabled": False,
                "slot_name": None,
                "synced": True,
            },
        ],
        "slots": [
            {"slot": "nation_from_region", "wal_status": "reserved", "sync": False},
            {"slot": "pg_16400_sync_16390_7300000000000000000", "wal_status": "reserved", "sync": True},
            {"slot": "old", "wal_status": "extended", "sync": False},
        ],
        "identities": {"public.t": "default"},
    }
    live = live_catalog(native, request, legacy={}, pglogical_orphans=("pgl_x",))
    assert set(live.sets["everything"].tables) == {ALL_TABLES, SCHEMA_PREFIX + "public"}
    assert live.subscriptions["region_from_d1"].provider_node == "d1"
    assert live.subscriptions["stray"].provider_node == "d2"
    assert live.orphan_slots == ("old", "pgl_x")
    assert live.replica_identities == {"public.k": "missing", "public.t": "default"}
    facts = {
        "public.t": TableFacts(
            exists=True,
            columns={"id": ColumnFacts(type="uuid", not_null=True)},
            pk_columns=("id",),
            pk_types=("uuid",),
        ),
        "public.k": TableFacts(exists=True, pk_columns=("id",), pk_types=("uuid",)),
    }
    # A filter on key columns only needs no identity of its own.
    assert desired_identities(request, facts) == {"public.t": "index(id,approved)"}


def test_diff_switches_each_pglogical_subscription_instead_of_creating() -> None:
    from reconciler.actions import SwitchSubscription
    from reconciler.diff import diff
    from reconciler.model import NodeCatalog, Subscription

    pgl = Subscription(
        name="region_from_d1",
        provider_node="d1",
        provider_dsn="x",
        replication_sets=("approved",),
        forward_origins=(),
    )
    native = pgl.model_copy(update={"forward_origins": ("all",)})
    gone = pgl.model_copy(update={"name": "region_from_old", "provider_node": "old"})
    desired = {"region": NodeCatalog(subscriptions={"region_from_d1": native})}
    for existing in ({}, {"region_from_d1": native}):  # before, and half-way through, a switch
        live = {
            "region": NodeCatalog(
                subscriptions=existing, legacy_subscriptions={"region_from_d1": pgl, "region_from_old": gone}
            )
        }
        actions = diff(desired, live)
        assert [a.kind for a in actions] == ["drop_subscription", "switch_subscription"]
        assert isinstance(actions[1], SwitchSubscription) and actions[1].after == native
        assert actions[1].destructive


@pytest.fixture
def reset_wal_keep_size(pg_servers: Any) -> Iterator[None]:
    """The servers are shared by every test: their WAL limit is reset whatever happens."""
    yield
    for index in range(len(pg_servers.ports)):
        with psycopg.connect(pg_servers.dsn(index), autocommit=True) as admin:
            admin.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
            admin.execute("SELECT pg_reload_conf()")


@pytest.mark.server
def test_native_sets_a_declared_wal_keep_size_and_converges(network: Any, reset_wal_keep_size: None) -> None:
    """The planner emits SetWalKeepSize for every engine: the native engine must run it too."""
    net = native_network(network)
    (Path(net.dir) / "settings.yaml").write_text(
        "level_settings:\n  district:\n    max_slot_wal_keep_size: 64MB\n"
    )
    net.state = load_desired_state(net.dir)
    assert "set_wal_keep_size" in [k for _, k, _ in kinds(plan_json(net))]
    apply(net, "--allow-destroy")
    assert net.execute("d1", "SHOW max_slot_wal_keep_size") == [("64MB",)]
    again = cli("plan", "-d", str(net.dir), "--detailed-exitcode")
    assert again.exit_code == 0, again.output


def test_replica_identity_is_a_value_written_as_the_plan_has_it() -> None:
    from reconciler.replica_identity import IdentityKind, ReplicaIdentity

    for text in ("default", "full", "nothing", "missing", "index(id,approved)"):
        assert str(ReplicaIdentity.parse(text)) == text
    assert ReplicaIdentity.parse("index(id,approved)") == ReplicaIdentity.index(("id", "approved"))
    assert ReplicaIdentity.parse("full").kind is IdentityKind.FULL
    for bad in ("index", "fuller", "index(a"):
        with pytest.raises(ValueError, match="replica identity"):
            ReplicaIdentity.parse(bad)
