"""pglogical statements: one psycopg.sql template per pglogical call, and each action as its statements.

Pure: no connection. Each statement is built by one function from one
template, so tests can build the same value by hand and compare.
"""

from __future__ import annotations

import hashlib
from typing import LiteralString, assert_never

from psycopg import sql

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
from reconciler.engines import heartbeat, migrations
from reconciler.engines.settings import wal_keep_size_sql
from reconciler.errors import ApplyError
from reconciler.model import ReplicationSet, SetTable, Subscription
from reconciler.row_filter import filter_sql


def interface_name(node: str, dsn: str) -> str:
    """Deterministic name for an extra interface of `node` with `dsn`.

    pglogical cannot change an interface's DSN, only add interfaces; naming the
    new one after a hash of its DSN makes re-running the same change find it.
    Node names are at most 40 characters, so this stays under 63 bytes.
    """
    return f"{node}_{hashlib.sha256(dsn.encode()).hexdigest()[:8]}"


def create_node_sql(name: str, dsn: str) -> sql.Composed:
    return sql.SQL("SELECT pglogical.create_node(node_name := {name}, dsn := {dsn})").format(
        name=sql.Literal(name), dsn=sql.Literal(dsn)
    )


def drop_node_sql(name: str) -> sql.Composed:
    return sql.SQL("SELECT pglogical.drop_node(node_name := {name}, ifexists := true)").format(
        name=sql.Literal(name)
    )


def add_interface_sql(node: str, iface: str, dsn: str) -> sql.Composed:
    """Add an interface with `dsn` to the node record, unless one has that DSN already.

    alter_node_add_interface fails on a name that exists; the guard makes a
    second run of the same change find it, and a change back to an older
    DSN reuse that DSN's interface, without a read first.
    """
    return sql.SQL(
        "SELECT pglogical.alter_node_add_interface("
        "node_name := {node}, interface_name := {iface}, dsn := {dsn})"
        " WHERE NOT EXISTS (SELECT FROM pglogical.node_interface i"
        " JOIN pglogical.node n ON n.node_id = i.if_nodeid"
        " WHERE n.node_name = {node} AND (i.if_name = {iface} OR i.if_dsn = {dsn}))"
    ).format(node=sql.Literal(node), iface=sql.Literal(iface), dsn=sql.Literal(dsn))


def interface_with_dsn(node: str, dsn: str, column: LiteralString) -> sql.Composed:
    """The oldest interface of the node record that has `dsn` (its if_id or if_name), as a subquery."""
    return sql.SQL(
        "(SELECT i.{column} FROM pglogical.node_interface i"
        " JOIN pglogical.node n ON n.node_id = i.if_nodeid"
        " WHERE n.node_name = {node} AND i.if_dsn = {dsn} ORDER BY i.if_id LIMIT 1)"
    ).format(column=sql.Identifier(column), node=sql.Literal(node), dsn=sql.Literal(dsn))


def drop_stale_provider_sql(provider: str, dsn: str) -> sql.Composed:
    """Drop a leftover record of the provider node whose default interface has another DSN.

    create_subscription refuses with `dsn ... points to existing node ... with
    different dsn` when this database holds such a record. drop_subscription
    removes the record with the provider's last subscription, so a leftover
    one is used by nothing: only a record that is not this database's own
    node and that no subscription uses is dropped (the engine refuses the
    others before it runs anything).
    """
    return sql.SQL(
        "SELECT pglogical.drop_node(node_name := {node}, ifexists := true)"
        " WHERE EXISTS (SELECT FROM pglogical.node n"
        " JOIN pglogical.node_interface i ON i.if_nodeid = n.node_id AND i.if_name = n.node_name"
        " WHERE n.node_name = {node} AND i.if_dsn <> {dsn}"
        " AND NOT EXISTS (SELECT FROM pglogical.local_node l WHERE l.node_id = n.node_id)"
        " AND NOT EXISTS (SELECT FROM pglogical.subscription s WHERE s.sub_origin = n.node_id))"
    ).format(node=sql.Literal(provider), dsn=sql.Literal(dsn))


def point_local_node_sql(node: str, dsn: str) -> list[sql.Composed]:
    """Make the interface with `dsn` the local node's interface, for the node and its subscriptions.

    pglogical has no function for this (alter_node_* only adds and drops
    interfaces), so its catalogs are updated directly: `local_node` says which
    interface is this node's DSN (create_subscription connects to it as a self
    check), and each subscription's `sub_target_if` is the DSN its table-sync
    worker connects to when it copies rows in (pglogical_sync.c). Workers read
    both when they start, so no signal is needed.
    """
    if_id = interface_with_dsn(node, dsn, "if_id")
    node_id = sql.SQL("(SELECT node_id FROM pglogical.node WHERE node_name = {node})").format(
        node=sql.Literal(node)
    )
    return [
        sql.SQL("UPDATE pglogical.local_node SET node_local_interface = {if_id}").format(if_id=if_id),
        sql.SQL(
            "UPDATE pglogical.subscription SET sub_target_if = {if_id} WHERE sub_target = {node_id}"
        ).format(if_id=if_id, node_id=node_id),
    ]


def set_sql(function: LiteralString, s: ReplicationSet) -> sql.Composed:
    """create_ or alter_replication_set with all four flags.

    Always explicit: create_replication_set defaults replicate_truncate to
    TRUE (a district TRUNCATE would empty the region table), and
    alter_replication_set's NULL defaults mean "leave unchanged".
    """
    return sql.SQL(
        "SELECT pglogical.{function}(set_name := {name}, replicate_insert := {i},"
        " replicate_update := {u}, replicate_delete := {d}, replicate_truncate := {t})"
    ).format(
        function=sql.SQL(function),
        name=sql.Literal(s.name),
        i=sql.Literal(s.replicate_insert),
        u=sql.Literal(s.replicate_update),
        d=sql.Literal(s.replicate_delete),
        t=sql.Literal(s.replicate_truncate),
    )


def drop_set_sql(name: str) -> sql.Composed:
    return sql.SQL("SELECT pglogical.drop_replication_set(set_name := {name}, ifexists := true)").format(
        name=sql.Literal(name)
    )


def add_table_sql(set_name: str, table: str, spec: SetTable, synchronize: bool) -> sql.Composed:
    """pglogical parses the filter text against the table, with the session's settings.

    The text is row_filter.filter_sql's, never the one a plan or a test
    holds: pglogical splices it into `SELECT <filter> FROM <table>` and
    parses that, so a text that reads differently with
    standard_conforming_strings off could change what it means.
    """
    row_filter = None if spec.row_filter is None else filter_sql(spec.row_filter, server_forms=True)
    return sql.SQL(
        "SELECT pglogical.replication_set_add_table(set_name := {set}, relation := {table}::regclass,"
        " synchronize_data := {sync}, columns := {columns}, row_filter := {row_filter})"
    ).format(
        set=sql.Literal(set_name),
        table=sql.Literal(table),
        sync=sql.Literal(synchronize),
        columns=sql.Literal(list(spec.columns) if spec.columns is not None else None),
        row_filter=sql.Literal(row_filter),
    )


def remove_table_sql(set_name: str, table: str) -> sql.Composed:
    return sql.SQL(
        "SELECT pglogical.replication_set_remove_table(set_name := {set}, relation := {table}::regclass)"
    ).format(set=sql.Literal(set_name), table=sql.Literal(table))


def remove_table_if_there_sql(set_name: str, table: str) -> sql.Composed:
    """remove_table, guarded: it fails on a table not in the set (a replace done half by hand)."""
    return sql.SQL(
        "SELECT pglogical.replication_set_remove_table(set_name := {set}, relation := {table}::regclass)"
        " WHERE EXISTS (SELECT FROM pglogical.replication_set_table t"
        " JOIN pglogical.replication_set s ON s.set_id = t.set_id"
        " JOIN pglogical.local_node l ON l.node_id = s.set_nodeid"
        " WHERE s.set_name = {set} AND t.set_reloid = {table}::regclass)"
    ).format(set=sql.Literal(set_name), table=sql.Literal(table))


def create_subscription_sql(s: Subscription, copy_data: bool = True) -> list[sql.Composed]:
    """Structure is never copied (the schema is deployed per node); data is, unless re-creating."""
    stmts = [
        drop_stale_provider_sql(s.provider_node, s.provider_dsn),
        sql.SQL(
            "SELECT pglogical.create_subscription(subscription_name := {name},"
            " provider_dsn := {dsn}, replication_sets := {sets},"
            " synchronize_structure := false, synchronize_data := {copy},"
            " forward_origins := {forward})"
        ).format(
            name=sql.Literal(s.name),
            copy=sql.Literal(copy_data),
            dsn=sql.Literal(s.provider_dsn),
            sets=sql.Literal(list(s.replication_sets)),
            forward=sql.Literal(list(s.forward_origins)),
        ),
    ]
    if not s.enabled:
        stmts.append(_sub_call("alter_subscription_disable", s.name, "immediate", False))
    return stmts


def drop_subscription_sql(name: str) -> sql.Composed:
    return _sub_call("drop_subscription", name, "ifexists", True)


def enable_subscription_sql(name: str) -> sql.Composed:
    """Start a subscription again now (outside a transaction block, as `immediate` needs)."""
    return _sub_call("alter_subscription_enable", name, "immediate", True)


def stop_subscriptions_sql(names: list[str]) -> sql.Composed:
    """Disable those of the named subscriptions that exist, and stop their apply workers now.

    Run on its own (committed) before a drop: drop_subscription waits for the
    apply worker to exit while holding its own locks, and a worker that
    blocks on one of them (a just-started worker updating its sync status)
    never exits; the drop then waits for ever. A worker stopped first needs
    none of the drop's locks. `immediate := true` is refused inside a
    transaction block, so this statement never runs in one.
    """
    return sql.SQL(
        "SELECT pglogical.alter_subscription_disable(subscription_name := s.sub_name, immediate := true)"
        " FROM pglogical.subscription s WHERE s.sub_name = ANY ({names}) ORDER BY s.sub_name"
    ).format(names=sql.Literal(names))


def restart_subscription_sql(name: str) -> list[sql.Composed]:
    """Disable and enable at once: the manager starts the apply worker now, not at its next 180 s wake-up.

    `immediate := true` is refused inside a transaction block: each runs on its own.
    """
    return [
        _sub_call("alter_subscription_disable", name, "immediate", True),
        _sub_call("alter_subscription_enable", name, "immediate", True),
    ]


def alter_subscription_sql(before: Subscription, after: Subscription) -> list[sql.Composed]:
    """In-place changes, in one transaction: interface, sets, enabled.

    A new provider DSN is a new interface of the provider's node record on
    this subscriber (named after its DSN, added unless there), then
    alter_subscription_interface (which restarts the apply worker).
    `enable`/`disable` run without `immediate := true`, which pglogical
    refuses inside a transaction block; the worker follows at commit.
    """
    stmts: list[sql.Composed] = []
    if before.provider_dsn != after.provider_dsn:
        iface = interface_name(after.provider_node, after.provider_dsn)
        stmts.append(add_interface_sql(after.provider_node, iface, after.provider_dsn))
        stmts.append(
            _sub_call(
                "alter_subscription_interface",
                after.name,
                "interface_name",
                interface_with_dsn(after.provider_node, after.provider_dsn, "if_name"),
            )
        )
    for added in sorted(set(after.replication_sets) - set(before.replication_sets)):
        stmts.append(
            _sub_call("alter_subscription_add_replication_set", after.name, "replication_set", added)
        )
    for removed in sorted(set(before.replication_sets) - set(after.replication_sets)):
        stmts.append(
            _sub_call("alter_subscription_remove_replication_set", after.name, "replication_set", removed)
        )
    if before.enabled != after.enabled:
        function = "alter_subscription_enable" if after.enabled else "alter_subscription_disable"
        stmts.append(_sub_call(function, after.name, "immediate", False))
    return stmts


def _sub_call(function: LiteralString, name: str, arg: LiteralString, value: object) -> sql.Composed:
    """A call by subscription name; `value` a literal, or a Composed subquery as it is."""
    return sql.SQL("SELECT pglogical.{function}(subscription_name := {name}, {arg} := {value})").format(
        function=sql.SQL(function),
        name=sql.Literal(name),
        arg=sql.SQL(arg),
        value=value if isinstance(value, sql.Composed) else sql.Literal(value),
    )


def terminate_slot_sql(slot: str) -> sql.Composed:
    return sql.SQL(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
        " WHERE slot_name = {slot} AND active_pid IS NOT NULL"
    ).format(slot=sql.Literal(slot))


def drop_slot_sql(slot: str) -> sql.Composed:
    return sql.SQL("SELECT pg_drop_replication_slot({slot})").format(slot=sql.Literal(slot))


def statements(action: Action) -> list[sql.Composed]:
    """What `action` runs on `action.node`, assuming the live state the plan saw."""
    match action:
        case CreateNode():
            return [create_node_sql(action.name, action.dsn)]
        case ChangeNodeDsn():
            iface = interface_name(action.name, action.after)
            return [
                add_interface_sql(action.name, iface, action.after),
                *point_local_node_sql(action.name, action.after),
            ]
        case DropNode():
            return [drop_node_sql(action.name)]
        case CreateSet():
            return [set_sql("create_replication_set", action.set)]
        case AlterSet():
            return [set_sql("alter_replication_set", action.after)]
        case DropSet():
            return [drop_set_sql(action.name)]
        case AddTable():
            return [add_table_sql(action.set_name, action.table, action.spec, action.synchronize_data)]
        case ReplaceTable():
            # pglogical has no alter for a table in a set; remove + add in one
            # transaction leaves no window (decoding reads the catalogs with a
            # historic snapshot). Rows are not re-copied: the action says so.
            return [
                remove_table_if_there_sql(action.set_name, action.table),
                add_table_sql(action.set_name, action.table, action.after, False),
            ]
        case RemoveTable():
            return [remove_table_sql(action.set_name, action.table)]
        case CreateSubscription():
            return create_subscription_sql(action.subscription, copy_data=action.copy_data)
        case AlterSubscription():
            return alter_subscription_sql(action.before, action.after)
        case ReplaceSubscription():
            # No initial copy: the subscriber holds the provider's older rows
            # and a COPY would fail on their keys; `verify --repair` fills the gap.
            names = sorted({action.before.name, action.after.name})
            return [
                stop_subscriptions_sql(names),
                *(drop_subscription_sql(name) for name in names),
                *create_subscription_sql(action.after, copy_data=False),
            ]
        case DropSubscription():
            return [stop_subscriptions_sql([action.name]), drop_subscription_sql(action.name)]
        case DropSlot():
            return [terminate_slot_sql(action.slot), drop_slot_sql(action.slot)]
        case RestartSubscription():
            return restart_subscription_sql(action.name)
        case SetWalKeepSize():
            return wal_keep_size_sql(action.after)
        case RunMigration():
            return migrations.statements(action)
        case CreateHeartbeat():
            return heartbeat.statements(action)
        case SetReplicaIdentity() | SwitchSubscription() | RefreshSubscription():
            raise ApplyError(f"{action.kind}: {unsupported(action)}")
        case _:
            assert_never(action)


def unsupported(action: Action) -> str | None:
    """Why pglogical cannot run `action`, None when it can."""
    match action:
        case SetReplicaIdentity() | SwitchSubscription() | RefreshSubscription():
            return (
                f"{action.kind} belongs to the native engine: pglogical keeps each table's replica"
                " identity, has no engine switch and refreshes no subscription"
            )
        case _:
            return None
