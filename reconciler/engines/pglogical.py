"""pglogical engine: runs each typed action's statements on its node, once, after checking what is done.

`statements` (pglogical_statements) is the only place the engine builds SQL.
`execute` reads the node first (inspect/pglogical_point): when the action is already
done it runs nothing, else exactly `statements(action)`, so an apply killed
half-way is completed by the next run. It trusts the action for what the
node looked like: apply checked each node's catalog fingerprint under its
lock, so the plan's `before` is the live state. Statements that must not be
seen half-done run in one transaction. Nodes, sets and tables are here;
subscriptions and slots in pglogical_subscriptions.
"""

from __future__ import annotations

from typing import Any, assert_never

import psycopg
from psycopg import errors as pgerrors

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
from reconciler.engines import (
    ALREADY,
    DONE,
    Outcome,
    ProviderConn,
    Result,
    guarded,
    heartbeat,
    migrations,
    restart,
    run,
    same_membership,
)
from reconciler.engines import pglogical_subscriptions as subs
from reconciler.engines.pglogical_statements import statements, unsupported
from reconciler.engines.settings import set_wal_keep_size
from reconciler.errors import ApplyError
from reconciler.inspect import pglogical_point as live
from reconciler.inspect.pglogical_point import Conn

__all__ = ["execute", "statements", "supports"]


def supports(action: Action) -> str | None:
    """None when pglogical can run `action`, else why not (a plan-time blocker)."""
    return unsupported(action)


def execute(
    conn: psycopg.Connection[Any],
    action: Action,
    *,
    provider_conn: ProviderConn | None = None,
) -> Outcome:
    """Run `action` on its node; its outcome, or ApplyError naming node, action and cause."""
    return guarded(action, lambda: _execute(conn, action, provider_conn))


def _execute(conn: Conn, action: Action, provider_conn: ProviderConn | None) -> Outcome:
    match action:
        case CreateNode():
            return _create_node(conn, action)
        case ChangeNodeDsn():
            return _change_node_dsn(conn, action)
        case DropNode():
            if not live.node_interfaces(conn, action.name):
                return ALREADY
            run(conn, statements(action))
            return DONE
        case CreateSet() | AlterSet():
            return _set(conn, action)
        case DropSet():
            if live.replication_set(conn, action.name) is None:
                return ALREADY
            run(conn, statements(action))
            return DONE
        case AddTable():
            return _add_table(conn, action)
        case ReplaceTable():
            return _replace_table(conn, action)
        case RemoveTable():
            if live.set_table(conn, action.set_name, action.table) is None:
                return ALREADY
            run(conn, statements(action))
            return DONE
        case CreateSubscription():
            return subs.create_subscription(conn, action, provider_conn)
        case AlterSubscription():
            return subs.alter_subscription(conn, action, provider_conn)
        case ReplaceSubscription():
            return subs.replace_subscription(conn, action, provider_conn)
        case DropSubscription():
            return subs.drop_subscription(conn, action, provider_conn)
        case DropSlot():
            return subs.drop_slot(conn, action)
        case RestartSubscription():
            if live.subscription(conn, action.name) is None:
                raise ApplyError(f"subscription {action.name!r} does not exist")
            return restart(
                conn, statements(action), lambda: bool(live.running_apply_workers(conn, [action.name]))
            )
        case SetWalKeepSize():
            return set_wal_keep_size(conn, action)
        case RunMigration():
            return migrations.execute(conn, action, provider_conn)
        case CreateHeartbeat():
            return heartbeat.execute(conn, action)
        case SetReplicaIdentity() | SwitchSubscription() | RefreshSubscription():
            raise ApplyError(str(unsupported(action)))
        case _:
            assert_never(action)


def _create_node(conn: Conn, action: CreateNode) -> Outcome:
    node = live.local_node(conn)
    if node is not None:
        if node.name != action.name:
            raise ApplyError(f"this database already is pglogical node {node.name!r}")
        if node.dsn != action.dsn:
            return Outcome(Result.ALREADY, " (its interface dsn differs: the next plan shows it)")
        return ALREADY
    run(conn, statements(action))
    return DONE


def _change_node_dsn(conn: Conn, action: ChangeNodeDsn) -> Outcome:
    node = live.local_node(conn)
    if node is None or node.name != action.name:
        raise ApplyError(f"this database is not pglogical node {action.name!r}")
    if node.dsn == action.after:
        return ALREADY
    run(conn, statements(action), transaction=True)
    return DONE


def _set(conn: Conn, action: CreateSet | AlterSet) -> Outcome:
    wanted = action.set if isinstance(action, CreateSet) else action.after
    current = live.replication_set(conn, wanted.name)
    if isinstance(action, AlterSet) and current is None:
        raise ApplyError(f"replication set {action.name!r} does not exist")
    if current is not None:
        if current.operations() == wanted.operations():
            return ALREADY
        if isinstance(action, CreateSet):
            return Outcome(Result.ALREADY, " (the set exists with other flags: the next plan shows it)")
    run(conn, statements(action))
    return DONE


def _add_table(conn: Conn, action: AddTable) -> Outcome:
    current = live.set_table(conn, action.set_name, action.table)
    if current is None:
        try:
            run(conn, statements(action))
            return DONE
        except pgerrors.UniqueViolation:
            # replication_set_table_pkey: a concurrent run added it meanwhile.
            current = live.set_table(conn, action.set_name, action.table)
            if current is None:
                raise
    if same_membership(current, action.spec):
        return ALREADY
    return Outcome(Result.ALREADY, " (in the set with another filter or column list: the next plan shows it)")


def _replace_table(conn: Conn, action: ReplaceTable) -> Outcome:
    current = live.set_table(conn, action.set_name, action.table)
    if current is not None and same_membership(current, action.after):
        return ALREADY
    # pglogical has no alter for a table in a set; remove + add in one
    # transaction leaves no window (decoding reads the catalogs with a
    # historic snapshot). The remove is guarded: a table already out of the
    # set (a replace done half by hand) is just added.
    run(conn, statements(action), transaction=True)
    return DONE
