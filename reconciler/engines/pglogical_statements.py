"""pglogical statements: one psycopg.sql template per pglogical call, and each action as its statements.

Pure: no connection. Each statement is built by one function from one
template, so tests can build the same value by hand and compare.
"""

from __future__ import annotations

import hashlib
from typing import LiteralString

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
    SetWalKeepSize,
)
from reconciler.engines.settings import wal_keep_size_sql
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
    return sql.SQL(
        "SELECT pglogical.alter_node_add_interface("
        "node_name := {node}, interface_name := {iface}, dsn := {dsn})"
    ).format(node=sql.Literal(node), iface=sql.Literal(iface), dsn=sql.Literal(dsn))


def point_local_node_sql(node: str, iface: str) -> list[sql.Composed]:
    """Make `iface` the local node's interface, for the node and its subscriptions.

    pglogical has no function for this (alter_node_* only adds and drops
    interfaces), so its catalogs are updated directly: `local_node` says which
    interface is this node's DSN (create_subscription connects to it as a self
    check), and each subscription's `sub_target_if` is the DSN its table-sync
    worker connects to when it copies rows in (pglogical_sync.c). Workers read
    both when they start, so no signal is needed.
    """
    if_id = sql.SQL(
        "(SELECT i.if_id FROM pglogical.node_interface i"
        " JOIN pglogical.node n ON n.node_id = i.if_nodeid"
        " WHERE n.node_name = {node} AND i.if_name = {iface})"
    ).format(node=sql.Literal(node), iface=sql.Literal(iface))
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


def create_subscription_sql(s: Subscription, copy_data: bool = True) -> list[sql.Composed]:
    """Structure is never copied (the schema is deployed per node); data is, unless re-creating."""
    stmts = [
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
        )
    ]
    if not s.enabled:
        stmts.append(_sub_call("alter_subscription_disable", s.name, "immediate", False))
    return stmts


def drop_subscription_sql(name: str) -> sql.Composed:
    return _sub_call("drop_subscription", name, "ifexists", True)


def alter_subscription_sql(
    before: Subscription, after: Subscription, iface: str, add_iface: bool
) -> list[sql.Composed]:
    """In-place changes, in one transaction: interface, sets, enabled.

    A new provider DSN is a new interface of the provider's node record on
    this subscriber, then alter_subscription_interface (which restarts the
    apply worker). `enable`/`disable` run without `immediate := true`, which
    pglogical refuses inside a transaction block; the worker follows at commit.
    """
    stmts: list[sql.Composed] = []
    if before.provider_dsn != after.provider_dsn:
        if add_iface:
            stmts.append(add_interface_sql(after.provider_node, iface, after.provider_dsn))
        stmts.append(_sub_call("alter_subscription_interface", after.name, "interface_name", iface))
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
    return sql.SQL("SELECT pglogical.{function}(subscription_name := {name}, {arg} := {value})").format(
        function=sql.SQL(function),
        name=sql.Literal(name),
        arg=sql.SQL(arg),
        value=sql.Literal(value),
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
                *point_local_node_sql(action.name, iface),
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
                remove_table_sql(action.set_name, action.table),
                add_table_sql(action.set_name, action.table, action.after, False),
            ]
        case RemoveTable():
            return [remove_table_sql(action.set_name, action.table)]
        case CreateSubscription():
            return create_subscription_sql(action.subscription)
        case AlterSubscription():
            iface = interface_name(action.after.provider_node, action.after.provider_dsn)
            return alter_subscription_sql(action.before, action.after, iface, add_iface=True)
        case ReplaceSubscription():
            return [
                drop_subscription_sql(action.before.name),
                *create_subscription_sql(action.after, copy_data=False),
            ]
        case DropSubscription():
            return [drop_subscription_sql(action.name)]
        case DropSlot():
            return [terminate_slot_sql(action.slot), drop_slot_sql(action.slot)]
        case SetWalKeepSize():
            return wal_keep_size_sql(action.after)
    raise AssertionError(f"unknown action {action!r}")  # pragma: no cover
