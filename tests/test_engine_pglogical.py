"""pglogical engine: statements as values, and idempotent execution on real district -> region servers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

from reconciler.actions import (
    Action,
    AddTable,
    AlterSet,
    AlterSubscription,
    ChangeNodeDsn,
    CreateNode,
    CreateSet,
    CreateSubscription,
    DropNode,
    DropSet,
    DropSlot,
    DropSubscription,
    RemoveTable,
    ReplaceSubscription,
    ReplaceTable,
)
from reconciler.engines import pglogical as engine
from reconciler.engines.pglogical_statements import interface_name
from reconciler.errors import ApplyError
from reconciler.inspect import inspect_node
from reconciler.model import ReplicationSet, SetTable, Subscription
from reconciler.topology import desired_catalogs

SMALL = {"region": None, "d1": "region"}
LEVELS = ("district", "region")
# Nothing listens here: a provider DSN that cannot be reached.
DEAD_PORT = 1


# --------------------------------------------------------------------------
# statements(): pure, compared by value with hand-built Composed
# --------------------------------------------------------------------------


def test_statements_create_node() -> None:
    action = CreateNode(node="d1", name="d1", dsn="host=h dbname=d1")
    assert engine.statements(action) == [
        sql.SQL("SELECT pglogical.create_node(node_name := {name}, dsn := {dsn})").format(
            name=sql.Literal("d1"), dsn=sql.Literal("host=h dbname=d1")
        )
    ]


def test_statements_create_set_passes_all_four_flags() -> None:
    action = CreateSet(node="d1", set=ReplicationSet(name="approved"))
    expected = sql.SQL(
        "SELECT pglogical.{function}(set_name := {name}, replicate_insert := {i},"
        " replicate_update := {u}, replicate_delete := {d}, replicate_truncate := {t})"
    ).format(
        function=sql.SQL("create_replication_set"),
        name=sql.Literal("approved"),
        i=sql.Literal(True),
        u=sql.Literal(True),
        d=sql.Literal(True),
        t=sql.Literal(False),
    )
    assert engine.statements(action) == [expected]
    # pglogical's own default for replicate_truncate is TRUE: it must be explicit.
    assert "replicate_truncate := false" in expected.as_string()


def _add_table(sync: bool, columns: list[str] | None, row_filter: str | None) -> sql.Composed:
    return sql.SQL(
        "SELECT pglogical.replication_set_add_table(set_name := {set},"
        " relation := {table}::regclass,"
        " synchronize_data := {sync}, columns := {columns}, row_filter := {row_filter})"
    ).format(
        set=sql.Literal("approved"),
        table=sql.Literal("public.approach"),
        sync=sql.Literal(sync),
        columns=sql.Literal(columns),
        row_filter=sql.Literal(row_filter),
    )


def test_statements_add_and_replace_table() -> None:
    spec = SetTable(row_filter="(status = 'approved') IS NOT FALSE", columns=("id", "status"))
    add = AddTable(node="d1", set_name="approved", table="public.approach", spec=spec)
    # The filter goes as the tool writes it out again, never as the plan holds it.
    sent = """(("status" = 'approved') IS NOT FALSE)"""
    assert engine.statements(add) == [_add_table(True, ["id", "status"], sent)]
    # PostgreSQL's own text of a filter (what a plan carries) is written out again too.
    normal = SetTable(row_filter="((status = 'approved'::text) IS NOT FALSE)")
    assert engine.statements(add.model_copy(update={"spec": normal})) == [
        _add_table(True, None, """(("status" = CAST('approved' AS "text")) IS NOT FALSE)""")
    ]

    replace = ReplaceTable(
        node="d1", set_name="approved", table="public.approach", before=SetTable(), after=spec
    )
    # The remove is guarded: a table a hand-made half replace left out of the set is just added.
    remove = sql.SQL(
        "SELECT pglogical.replication_set_remove_table(set_name := {set}, relation := {table}::regclass)"
        " WHERE EXISTS (SELECT FROM pglogical.replication_set_table t"
        " JOIN pglogical.replication_set s ON s.set_id = t.set_id"
        " JOIN pglogical.local_node l ON l.node_id = s.set_nodeid"
        " WHERE s.set_name = {set} AND t.set_reloid = {table}::regclass)"
    ).format(set=sql.Literal("approved"), table=sql.Literal("public.approach"))
    # A replaced table is never re-copied: synchronize_data := false.
    assert engine.statements(replace) == [remove, _add_table(False, ["id", "status"], sent)]


def test_statements_create_subscription_and_drop_slot() -> None:
    sub = Subscription(
        name="region_from_d1",
        provider_node="d1",
        provider_dsn="host=h dbname=d1",
        replication_sets=("approved",),
        forward_origins=(),
    )
    assert engine.statements(CreateSubscription(node="region", subscription=sub)) == [
        # A leftover record of d1 with another dsn (no subscription uses it) would make the create fail.
        sql.SQL(
            "SELECT pglogical.drop_node(node_name := {node}, ifexists := true)"
            " WHERE EXISTS (SELECT FROM pglogical.node n"
            " JOIN pglogical.node_interface i ON i.if_nodeid = n.node_id AND i.if_name = n.node_name"
            " WHERE n.node_name = {node} AND i.if_dsn <> {dsn}"
            " AND NOT EXISTS (SELECT FROM pglogical.local_node l WHERE l.node_id = n.node_id)"
            " AND NOT EXISTS (SELECT FROM pglogical.subscription s WHERE s.sub_origin = n.node_id))"
        ).format(node=sql.Literal("d1"), dsn=sql.Literal("host=h dbname=d1")),
        sql.SQL(
            "SELECT pglogical.create_subscription(subscription_name := {name},"
            " provider_dsn := {dsn}, replication_sets := {sets},"
            " synchronize_structure := false, synchronize_data := {copy},"
            " forward_origins := {forward})"
        ).format(
            name=sql.Literal("region_from_d1"),
            dsn=sql.Literal("host=h dbname=d1"),
            sets=sql.Literal(["approved"]),
            copy=sql.Literal(True),
            forward=sql.Literal([]),
        ),
    ]
    assert engine.statements(DropSlot(node="d1", slot="pgl_x")) == [
        sql.SQL(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
            " WHERE slot_name = {slot} AND active_pid IS NOT NULL"
        ).format(slot=sql.Literal("pgl_x")),
        sql.SQL("SELECT pg_drop_replication_slot({slot})").format(slot=sql.Literal("pgl_x")),
    ]


def test_statements_alter_subscription_dsn_adds_a_named_interface() -> None:
    before = Subscription(
        name="s",
        provider_node="d1",
        provider_dsn="host=a",
        replication_sets=("x",),
        forward_origins=(),
    )
    after = before.model_copy(update={"provider_dsn": "host=b", "enabled": False})
    iface = interface_name("d1", "host=b")
    assert iface == interface_name("d1", "host=b") != interface_name("d1", "host=a")
    assert iface.startswith("d1_") and len(iface) == len("d1_") + 8
    rendered = [
        s.as_string() for s in engine.statements(AlterSubscription(node="region", before=before, after=after))
    ]
    assert rendered == [
        "SELECT pglogical.alter_node_add_interface(node_name := 'd1',"
        f" interface_name := '{iface}', dsn := 'host=b')"
        # Unless the record has an interface with that DSN already (a change back reuses it).
        " WHERE NOT EXISTS (SELECT FROM pglogical.node_interface i"
        " JOIN pglogical.node n ON n.node_id = i.if_nodeid"
        f" WHERE n.node_name = 'd1' AND (i.if_name = '{iface}' OR i.if_dsn = 'host=b'))",
        "SELECT pglogical.alter_subscription_interface(subscription_name := 's',"
        ' interface_name := (SELECT i."if_name" FROM pglogical.node_interface i'
        " JOIN pglogical.node n ON n.node_id = i.if_nodeid"
        " WHERE n.node_name = 'd1' AND i.if_dsn = 'host=b' ORDER BY i.if_id LIMIT 1))",
        "SELECT pglogical.alter_subscription_disable(subscription_name := 's', immediate := false)",
    ]


# --------------------------------------------------------------------------
# Real servers: district d1 -> region
# --------------------------------------------------------------------------


def _wait(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def _status(net: Any, node: str, sub: str) -> str | None:
    rows = net.execute(node, "SELECT status FROM pglogical.show_subscription_status(%s)", (sub,))
    return rows[0][0] if rows else None


def _setup_actions(net: Any) -> list[Action]:
    """The ordered actions that build d1 -> region from nothing, from the derived catalogs.

    Filters in their normal forms, as inspection gives them to the diff: an
    engine compares the live filter with the action's by text.
    """
    derived = desired_catalogs(net.state)
    catalogs = {node: inspect_node(net.state, node, derived[node]).desired for node in derived}
    actions: list[Action] = []
    for node in ("d1", "region"):
        actions.append(CreateNode(node=node, name=node, dsn=net.dsn(node)))
    for node in ("d1", "region"):
        for s in catalogs[node].sets.values():
            actions.append(CreateSet(node=node, set=s))
            for table, spec in s.tables.items():
                actions.append(AddTable(node=node, set_name=s.name, table=table, spec=spec))
    for sub in catalogs["region"].subscriptions.values():
        actions.append(CreateSubscription(node="region", subscription=sub))
    return actions


def _run_twice(net: Any, action: Action, **kwargs: Any) -> tuple[str, str]:
    """Execute, then execute again: the second run must be a harmless no-op."""
    conn = net.connect(action.node)
    first = engine.execute(conn, action, **kwargs)
    second = engine.execute(conn, action, **kwargs)
    return str(first), str(second)


def _built(net: Any) -> Subscription:
    for action in _setup_actions(net):
        first, second = _run_twice(net, action)
        assert first == "done", (action, first)
        assert second == "already done", (action, second)
    sub = desired_catalogs(net.state)["region"].subscriptions
    (only,) = sub.values()
    _wait("replicating", lambda: _status(net, "region", only.name) == "replicating")
    return only


def _provider_conn(net: Any) -> Callable[[str], psycopg.Connection[Any] | None]:
    return lambda node: net.connect(node)


@pytest.mark.server
def test_approved_rows_flow_upstream_and_drafts_do_not(network: Any) -> None:
    net = network(parents=SMALL, levels=LEVELS)
    _built(net)
    net.execute(
        "d1",
        "INSERT INTO technology (title, district, approved) VALUES"
        " ('ok', 'd1', true), ('draft', 'd1', false)",
    )
    net.execute(
        "d1",
        "INSERT INTO approach (title, status, district, internal_note) VALUES"
        " ('ok', 'approved', 'd1', 'secret note'), ('draft', 'draft', 'd1', 'x')",
    )

    def arrived() -> bool:
        rows = net.execute("region", "SELECT count(*) FROM approach")
        return bool(rows[0][0] >= 1) and bool(
            net.execute("region", "SELECT count(*) FROM technology")[0][0] >= 1
        )

    _wait("approved rows at the region", arrived)
    assert net.execute("region", "SELECT title, approved FROM technology") == [("ok", True)]
    # The column list keeps internal_note at the district.
    assert net.execute("region", "SELECT title, status, internal_note FROM approach") == [
        ("ok", "approved", None)
    ]
    # DELETE of an approved row passes the installed `(...) IS NOT FALSE` filter.
    net.execute("d1", "DELETE FROM technology WHERE title = 'ok'")
    _wait(
        "the delete at the region",
        lambda: net.execute("region", "SELECT count(*) FROM technology")[0][0] == 0,
    )


@pytest.mark.server
def test_replace_table_changes_the_installed_filter(network: Any) -> None:
    net = network(parents=SMALL, levels=LEVELS)
    _built(net)
    before = desired_catalogs(net.state)["d1"].sets["approved"].tables["public.technology"]
    # In its normal form, as a plan carries it (inspection normalises desired filters).
    after = SetTable(row_filter="((approved AND (district <> 'hidden'::text)) IS NOT FALSE)")
    action = ReplaceTable(
        node="d1", set_name="approved", table="public.technology", before=before, after=after
    )
    assert _run_twice(net, action) == ("done", "already done")
    (row,) = net.execute(
        "d1",
        "SELECT pg_get_expr(t.set_row_filter, t.set_reloid), t.set_att_list"
        " FROM pglogical.replication_set_table t"
        " JOIN pglogical.replication_set s USING (set_id)"
        " WHERE s.set_name = 'approved' AND t.set_reloid = 'public.technology'::regclass",
    )
    assert row == ("((approved AND (district <> 'hidden'::text)) IS NOT FALSE)", None)
    # Replication goes on under the new filter.
    net.execute(
        "d1",
        "INSERT INTO technology (title, district, approved) VALUES"
        " ('seen', 'd1', true), ('unseen', 'hidden', true)",
    )
    _wait(
        "the new filter's row",
        lambda: net.execute("region", "SELECT title FROM technology") == [("seen",)],
    )
    # AddTable of the table now present with another filter: no error, says so.
    outcome = str(
        engine.execute(
            net.connect("d1"),
            AddTable(node="d1", set_name="approved", table="public.technology", spec=before),
        )
    )
    assert outcome.startswith("already done (in the set with another filter")


@pytest.mark.server
def test_unreachable_provider_drop_leaves_slot_then_drop_slot_removes_it(network: Any) -> None:
    net = network(parents=SMALL, levels=LEVELS)
    sub = _built(net)
    (slot,) = net.execute("region", "SELECT sub_slot_name FROM pglogical.subscription")[0]
    assert net.execute("d1", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (slot,)) == [
        (1,)
    ]

    dead = sub.model_copy(update={"provider_dsn": _with_port(net.dsn("d1"), DEAD_PORT)})
    alter = AlterSubscription(node="region", before=sub, after=dead)
    assert _run_twice(net, alter) == ("done", "already done")
    (shown,) = net.execute(
        "region", "SELECT provider_dsn FROM pglogical.show_subscription_status(%s)", (sub.name,)
    )
    assert shown == (dead.provider_dsn,)

    drop = DropSubscription(node="region", name=sub.name, provider_node="d1")
    first, second = _run_twice(net, drop)
    assert first == (
        f"done; slot {slot} left on provider d1 (provider unreachable):"
        " it will show as an orphaned slot until dropped"
    )
    assert second == "already done"
    assert net.execute("region", "SELECT count(*) FROM pglogical.subscription") == [(0,)]
    _wait(
        "the orphaned slot to be inactive",
        lambda: (
            net.execute("d1", "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            == [(False,)]
        ),
    )

    assert _run_twice(net, DropSlot(node="d1", slot=slot)) == ("done", "already done")
    assert net.execute("d1", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (slot,)) == [
        (0,)
    ]


def _with_port(dsn: str, port: int) -> str:
    return " ".join(f"port={port}" if p.startswith("port=") else p for p in dsn.split())


@pytest.mark.server
def test_drop_subscription_drops_a_left_slot_over_the_admin_connection(network: Any) -> None:
    net = network(parents=SMALL, levels=LEVELS)
    sub = _built(net)
    dead = sub.model_copy(update={"provider_dsn": _with_port(net.dsn("d1"), DEAD_PORT)})
    engine.execute(net.connect("region"), AlterSubscription(node="region", before=sub, after=dead))
    outcome = str(
        engine.execute(
            net.connect("region"),
            DropSubscription(node="region", name=sub.name, provider_node="d1"),
            provider_conn=_provider_conn(net),
        )
    )
    assert outcome.startswith("done (slot pgl_") and "dropped over the admin connection" in outcome
    assert net.execute(
        "d1", "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
    ) == [(0,)]


@pytest.mark.server
def test_drop_slot_terminates_an_active_walsender(network: Any) -> None:
    net = network(parents=SMALL, levels=LEVELS)
    _built(net)
    (slot,) = net.execute("region", "SELECT sub_slot_name FROM pglogical.subscription")[0]
    _wait(
        "the slot to be active",
        lambda: (
            net.execute("d1", "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            == [(True,)]
        ),
    )
    assert str(engine.execute(net.connect("d1"), DropSlot(node="d1", slot=slot))) == "done"
    assert net.execute("d1", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (slot,)) == [
        (0,)
    ]


@pytest.mark.server
def test_alter_replace_and_teardown_are_idempotent(network: Any) -> None:
    net = network(parents=SMALL, levels=LEVELS)
    sub = _built(net)
    approved = desired_catalogs(net.state)["d1"].sets["approved"]
    no_delete = approved.model_copy(update={"replicate_delete": False, "tables": {}})
    assert _run_twice(net, AlterSet(node="d1", name="approved", before=approved, after=no_delete)) == (
        "done",
        "already done",
    )
    assert net.execute(
        "d1",
        "SELECT replicate_delete, replicate_truncate FROM pglogical.replication_set"
        " WHERE set_name = 'approved'",
    ) == [(False, False)]

    # forward_origins cannot be altered: replace drops and re-creates.
    forwarding = sub.model_copy(update={"forward_origins": ("all",)})
    replace = ReplaceSubscription(node="region", before=sub, after=forwarding)
    first, second = _run_twice(net, replace)
    # A re-created subscription does not copy: the outcome says verify --repair fills the gap.
    assert first == "done; rows changed meanwhile need `reconcile verify --repair`"
    assert second == "already done"
    assert net.execute("region", "SELECT sub_forward_origins FROM pglogical.subscription") == [(["all"],)]

    # A set the subscription already has, a disable, and back: in place.
    disabled = forwarding.model_copy(update={"enabled": False})
    assert _run_twice(net, AlterSubscription(node="region", before=forwarding, after=disabled)) == (
        "done",
        "already done",
    )
    _wait("disabled", lambda: _status(net, "region", sub.name) == "disabled")

    teardown: list[Action] = [
        DropSubscription(node="region", name=sub.name, provider_node="d1"),
        RemoveTable(node="d1", set_name="approved", table="public.technology"),
        RemoveTable(node="d1", set_name="approved", table="public.approach"),
        DropSet(node="d1", name="approved"),
        DropSet(node="region", name="approved"),
        DropNode(node="region", name="region"),
        DropNode(node="d1", name="d1"),
    ]
    for action in teardown:
        assert _run_twice(net, action) == ("done", "already done"), action
    for node in ("d1", "region"):
        assert net.execute(node, "SELECT count(*) FROM pglogical.node") == [(0,)]
    assert net.execute(
        "d1", "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
    ) == [(0,)]


@pytest.mark.server
def test_change_node_dsn_moves_the_local_interface(network: Any) -> None:
    net = network(parents=SMALL, levels=LEVELS)
    sub = _built(net)
    old = net.dsn("region")
    new = f"{old} application_name=reconcile_test"
    action = ChangeNodeDsn(node="region", name="region", before=old, after=new)
    assert _run_twice(net, action) == ("done", "already done")
    local = (
        "SELECT i.if_name, i.if_dsn FROM pglogical.local_node l"
        " JOIN pglogical.node_interface i ON i.if_id = l.node_local_interface"
    )
    assert net.execute("region", local) == [(interface_name("region", new), new)]
    # Subscriptions of this node copy rows in over the new interface too.
    assert net.execute(
        "region",
        "SELECT i.if_dsn FROM pglogical.subscription s"
        " JOIN pglogical.node_interface i ON i.if_id = s.sub_target_if",
    ) == [(new,)]
    # create_subscription's self check connects to the new local DSN: it works.
    replace = ReplaceSubscription(
        node="region", before=sub, after=sub.model_copy(update={"forward_origins": ("all",)})
    )
    assert str(engine.execute(net.connect("region"), replace)).startswith("done")
    _wait("replicating", lambda: _status(net, "region", sub.name) == "replicating")
    # Changing back reuses the interface that already has that DSN.
    back = ChangeNodeDsn(node="region", name="region", before=new, after=old)
    assert _run_twice(net, back) == ("done", "already done")
    assert net.execute("region", local) == [("region", old)]


@pytest.mark.server
def test_errors_name_node_and_action_without_secrets(network: Any) -> None:
    net = network(parents=SMALL, levels=LEVELS)
    _built(net)
    missing = AddTable(node="d1", set_name="approved", table="public.nope", spec=SetTable())
    with pytest.raises(ApplyError) as err:
        engine.execute(net.connect("d1"), missing)
    assert str(err.value).startswith("d1: + table public.nope in set approved")
    assert 'relation "public.nope" does not exist' in str(err.value)

    secret_dsn = _with_port(net.dsn("d1"), DEAD_PORT) + " password=hunter2"
    sub = Subscription(
        name="other",
        provider_node="elsewhere",
        provider_dsn=secret_dsn,
        replication_sets=("approved",),
        forward_origins=(),
    )
    with pytest.raises(ApplyError) as err:
        engine.execute(net.connect("region"), CreateSubscription(node="region", subscription=sub))
    assert str(err.value).startswith("region: + subscription other <- elsewhere")
    assert "hunter2" not in str(err.value)

    # A set the provider lacks would leave the subscription down: refused up front.
    lacking = CreateSubscription(
        node="region",
        subscription=sub.model_copy(
            update={
                "name": "x",
                "provider_node": "d1",
                "provider_dsn": net.dsn("d1"),
                "replication_sets": ("nosuchset",),
            }
        ),
    )
    with pytest.raises(ApplyError, match="provider d1 lacks replication set"):
        engine.execute(net.connect("region"), lacking, provider_conn=_provider_conn(net))


@pytest.mark.server
def test_create_subscription_clears_a_stale_provider_record(network: Any) -> None:
    net = network(parents=SMALL, levels=LEVELS)
    actions = _setup_actions(net)
    *prepare, create = actions
    for action in prepare:
        engine.execute(net.connect(action.node), action)
    # A record of node d1 left on the region with another DSN and no
    # subscription: create_subscription alone would refuse with "dsn ...
    # points to existing node ... with different dsn".
    ((node_id,),) = net.execute("d1", "SELECT node_id FROM pglogical.local_node")
    net.execute("region", "INSERT INTO pglogical.node VALUES (%s, 'd1')", (node_id,))
    net.execute(
        "region",
        "INSERT INTO pglogical.node_interface VALUES (4242, 'd1', %s, 'host=127.0.0.1 port=1')",
        (node_id,),
    )
    assert isinstance(create, CreateSubscription)
    outcome = str(engine.execute(net.connect("region"), create, provider_conn=_provider_conn(net)))
    assert outcome == "done (a stale record of node d1 with another dsn was dropped first)"
    _wait("replicating", lambda: _status(net, "region", create.subscription.name) == "replicating")

    # A second subscription to d1 with yet another DSN cannot drop a record in use.
    other = create.subscription.model_copy(
        update={"name": "second", "provider_dsn": f"{net.dsn('d1')} application_name=x"}
    )
    with pytest.raises(ApplyError, match="used by 1 other subscription"):
        engine.execute(net.connect("region"), CreateSubscription(node="region", subscription=other))


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("host=a password=hunter2 dbname=x", "host=a dbname=x"),
        ("host=a password = 'hun ter2' dbname=x", "host=a dbname=x"),
        ("postgresql://u:hunter2@h/db", "postgresql://u@h/db"),
        ("host=a dbname=x", "host=a dbname=x"),
    ],
)
def test_redact_removes_passwords(text: str, shown: str) -> None:
    from reconciler.secrets import scrub

    assert scrub(text) == shown


@pytest.mark.server
def test_execute_completes_work_left_half_done(network: Any) -> None:
    net = network(parents=SMALL, levels=LEVELS)
    sub = _built(net)
    # ReplaceTable killed between its remove and its add (as if run by hand).
    net.execute("d1", "SELECT pglogical.replication_set_remove_table('approved', 'public.technology')")
    after = SetTable(row_filter="(approved IS NOT FALSE)", columns=None)
    replace = ReplaceTable(
        node="d1", set_name="approved", table="public.technology", before=after, after=after
    )
    assert str(engine.execute(net.connect("d1"), replace)) == "done"
    assert net.execute(
        "d1",
        "SELECT pg_get_expr(set_row_filter, set_reloid) FROM pglogical.replication_set_table"
        " WHERE set_reloid = 'public.technology'::regclass",
    ) == [("(approved IS NOT FALSE)",)]

    # The provider-DSN change stopped after its interface was added.
    new_dsn = f"{net.dsn('d1')} application_name=moved"
    iface = interface_name("d1", new_dsn)
    net.execute("region", "SELECT pglogical.alter_node_add_interface('d1', %s, %s)", (iface, new_dsn))
    moved = sub.model_copy(update={"provider_dsn": new_dsn})
    alter = AlterSubscription(node="region", before=sub, after=moved)
    assert _run_twice(net, alter) == ("done", "already done")
    _wait("replicating over the new interface", lambda: _status(net, "region", sub.name) == "replicating")
    assert net.execute(
        "region", "SELECT provider_dsn FROM pglogical.show_subscription_status(%s)", (sub.name,)
    ) == [(new_dsn,)]
