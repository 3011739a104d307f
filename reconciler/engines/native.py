"""Native engine (PostgreSQL 15+ publications, subscriptions): runs each action's statements once on its node.

`statements` (native_statements) is the only place the engine builds SQL.
`execute` reads the node first (inspect/native_point): when the action is already
done it runs nothing, else exactly `statements(action)`. It trusts the
action for what the node looked like: apply checked each node's catalog
fingerprint under its lock. CREATE/DROP SUBSCRIPTION and SET PUBLICATION
with refresh cannot run inside a transaction block: they run on the
autocommit connection one by one.
"""

from __future__ import annotations

from typing import Any, assert_never

import psycopg
from psycopg import errors as pgerrors
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
from reconciler.engines import (
    ALREADY,
    DONE,
    Outcome,
    ProviderConn,
    Result,
    guarded,
    heartbeat,
    migrations,
    pg_message,
    restart,
    run,
    same_membership,
)
from reconciler.engines import pglogical as pglogical_engine
from reconciler.engines.native_statements import (
    alter_subscription_sql,
    detach_slot_sql,
    statements,
    unsupported,
)
from reconciler.engines.native_switch import refuse_under_pglogical, switch
from reconciler.engines.pglogical_subscriptions import drop_slot
from reconciler.engines.settings import set_wal_keep_size
from reconciler.errors import ApplyError
from reconciler.inspect import native_point as live
from reconciler.inspect import pglogical_point
from reconciler.inspect.native import ALL_TABLES, SCHEMA_PREFIX
from reconciler.model import Subscription
from reconciler.replica_identity import ReplicaIdentity
from reconciler.secrets import redact_text
from reconciler.topology import FORWARD_ALL

__all__ = ["execute", "statements", "supports"]

Conn = psycopg.Connection[Any]


def supports(action: Action) -> str | None:
    """None when the native engine can run `action`, else why not (a plan-time blocker)."""
    return unsupported(action)


def execute(conn: Conn, action: Action, *, provider_conn: ProviderConn | None = None) -> Outcome:
    """Run `action` on its node; its outcome, or ApplyError naming node, action and cause."""
    return guarded(action, lambda: _execute(conn, action, provider_conn))


def _execute(conn: Conn, action: Action, provider_conn: ProviderConn | None) -> Outcome:
    match action:
        case CreateSet() | AlterSet():
            return _set(conn, action)
        case DropSet():
            if live.publication(conn, action.name) is None:
                return ALREADY
            run(conn, statements(action))
            return DONE
        case SetReplicaIdentity():
            if live.replica_identity(conn, action.table) == ReplicaIdentity.parse(action.after):
                return ALREADY
            run(conn, statements(action), transaction=True)
            return DONE
        case AddTable():
            return _add_table(conn, action)
        case ReplaceTable():
            return _replace_table(conn, action)
        case RemoveTable():
            return _remove_table(conn, action)
        case CreateSubscription():
            return _create_subscription(conn, action)
        case AlterSubscription():
            return _alter_subscription(conn, action)
        case RefreshSubscription():
            if live.subscription(conn, action.name) is None:
                raise ApplyError(f"subscription {action.name!r} does not exist")
            run(conn, statements(action))
            return DONE
        case RestartSubscription():
            if live.subscription(conn, action.name) is None:
                raise ApplyError(f"subscription {action.name!r} does not exist")
            return restart(conn, statements(action), lambda: live.apply_worker_running(conn, action.name))
        case ReplaceSubscription():
            return _replace_subscription(conn, action, provider_conn)
        case SwitchSubscription():
            return switch(conn, action, provider_conn)
        case DropSubscription():
            return _drop_subscription(conn, action, provider_conn)
        case DropSlot():
            return drop_slot(conn, action)
        case SetWalKeepSize():
            return set_wal_keep_size(conn, action)
        case RunMigration():
            return migrations.execute(conn, action, provider_conn)
        case CreateHeartbeat():
            return heartbeat.execute(conn, action)
        case CreateNode() | ChangeNodeDsn() | DropNode():
            raise ApplyError(str(unsupported(action)))
        case _:
            assert_never(action)


# -- publications ----------------------------------------------------------------


def _set(conn: Conn, action: CreateSet | AlterSet) -> Outcome:
    wanted = action.set if isinstance(action, CreateSet) else action.after
    current = live.publication(conn, wanted.name)
    if isinstance(action, AlterSet) and current is None:
        raise ApplyError(f"publication {wanted.name!r} does not exist")
    if current is not None:
        if current.set.operations() == wanted.operations():
            return ALREADY
        if isinstance(action, CreateSet):
            return Outcome(
                Result.ALREADY, " (the publication exists with other operations: the next plan shows it)"
            )
    run(conn, statements(action))
    return DONE


def _add_table(conn: Conn, action: AddTable) -> Outcome:
    pub = live.publication(conn, action.set_name)
    if pub is None:
        raise ApplyError(f"publication {action.set_name!r} does not exist")
    if not pub.all_tables:
        current = live.publication_table(conn, action.set_name, action.table)
        if current is not None:
            if same_membership(current, action.spec):
                return ALREADY
            return Outcome(
                Result.ALREADY,
                " (in the publication with another filter or column list: the next plan shows it)",
            )
        run(conn, statements(action))
        return DONE
    run(conn, statements(action, recreate=pub.set), transaction=True)
    return Outcome(
        Result.DONE, " (the FOR ALL TABLES publication was re-created with only its declared tables)"
    )


def _replace_table(conn: Conn, action: ReplaceTable) -> Outcome:
    current = live.publication_table(conn, action.set_name, action.table)
    if current is not None and same_membership(current, action.after):
        return ALREADY
    if current is None:
        raise ApplyError(f"table {action.table} is not in publication {action.set_name} any more: plan again")
    run(conn, statements(action), transaction=True)
    return DONE


def _remove_table(conn: Conn, action: RemoveTable) -> Outcome:
    if action.table == ALL_TABLES:
        pub = live.publication(conn, action.set_name)
        if pub is None or not pub.all_tables:
            return ALREADY
        run(conn, statements(action, recreate=pub.set), transaction=True)
        return Outcome(Result.DONE, " (re-created without FOR ALL TABLES)")
    if action.table.startswith(SCHEMA_PREFIX):
        try:
            run(conn, statements(action))
        except pgerrors.UndefinedObject:
            return ALREADY
        return DONE
    if live.publication_table(conn, action.set_name, action.table) is None:
        return ALREADY
    run(conn, statements(action))
    return DONE


# -- subscriptions ------------------------------------------------------------------


def as_model(current: live.NativeSubscription, wanted: Subscription) -> Subscription:
    return Subscription(
        name=current.name,
        provider_node=wanted.provider_node,
        provider_dsn=current.conninfo,
        replication_sets=current.publications,
        forward_origins=FORWARD_ALL,
        enabled=current.enabled,
    )


def _create_subscription(conn: Conn, action: CreateSubscription) -> Outcome:
    wanted = action.subscription
    current = live.subscription(conn, wanted.name)
    if current is not None:
        if not alter_subscription_sql(as_model(current, wanted), wanted):
            return ALREADY
        raise ApplyError(
            f"subscription {wanted.name!r} exists with other attributes; the next plan shows how"
        )
    refuse_under_pglogical(conn, action.node)
    # Not in a transaction block: CREATE SUBSCRIPTION creates the provider's slot.
    run(conn, statements(action))
    return DONE


def _alter_subscription(conn: Conn, action: AlterSubscription) -> Outcome:
    current = live.subscription(conn, action.after.name)
    if current is None:
        raise ApplyError(f"subscription {action.after.name!r} does not exist")
    if not alter_subscription_sql(as_model(current, action.after), action.after):
        return ALREADY
    run(conn, statements(action))
    return DONE


def _replace_subscription(
    conn: Conn, action: ReplaceSubscription, provider_conn: ProviderConn | None
) -> Outcome:
    current = live.subscription(conn, action.after.name)
    if (
        current is not None
        and action.reason is None
        and not alter_subscription_sql(as_model(current, action.after), action.after)
    ):
        return ALREADY
    refuse_under_pglogical(conn, action.node)
    *drops, create = statements(action)
    notes = []
    for name, drop in zip(sorted({action.before.name, action.after.name}), drops, strict=True):
        note = _drop_native(conn, name, drop, action.before.provider_node, provider_conn)
        if note is not None and note != DONE:
            notes.append(str(note))
    run(conn, [create])
    notes.append("rows changed meanwhile need `reconcile verify --repair`")
    return Outcome(Result.DONE, "".join(f"; {n}" for n in notes))


def _drop_subscription(conn: Conn, action: DropSubscription, provider_conn: ProviderConn | None) -> Outcome:
    """Drop the native subscription of that name, and a pglogical one (engine switch leftovers)."""
    [drop] = statements(action)
    native = _drop_native(conn, action.name, drop, action.provider_node, provider_conn)
    pgl = None
    if live.has_pglogical(conn) and pglogical_point.subscription(conn, action.name) is not None:
        # The pglogical engine's own DropSubscription: its statements, its slot handling.
        pgl = pglogical_engine.execute(conn, action, provider_conn=provider_conn)
    if pgl is None:
        return ALREADY if native is None else native
    if native is None:
        return Outcome(pgl.result, f" (the pglogical subscription){pgl.detail}")
    return Outcome(Result.DONE, f"{native.detail}; pglogical: {pgl}")


def _drop_native(
    conn: Conn, name: str, drop: sql.Composed, provider: str, provider_conn: ProviderConn | None
) -> Outcome | None:
    """DROP SUBSCRIPTION (the action's statement); None if there was none.

    DROP SUBSCRIPTION drops the provider's slot over the subscription's own
    connection and fails when the provider is unreachable. Then, and only
    then, the slot is detached (disable, slot_name = NONE) and the
    subscription dropped: the slot stays on the provider, is dropped over the
    reconciler's connection when it has one, and otherwise shows as an
    orphaned slot until cleaned.
    """
    current = live.subscription(conn, name)
    if current is None:
        return None
    try:
        run(conn, [drop])
        return DONE
    except pgerrors.ConnectionFailure as exc:
        reason = pg_message(exc)
    run(conn, detach_slot_sql(name))
    slot = current.slot_name or name
    pconn = provider_conn(provider) if provider_conn is not None else None
    if pconn is not None:
        try:
            drop_slot(pconn, DropSlot(node=provider, slot=slot))
            note = f" (slot {slot} on provider {provider} dropped over the admin connection)"
            return Outcome(Result.DONE, note)
        except (ApplyError, psycopg.Error) as exc2:
            reason = pg_message(exc2) if isinstance(exc2, psycopg.Error) else str(exc2)
    return Outcome(
        Result.DONE,
        f"; slot {slot} left on provider {provider} ({redact_text(reason)}):"
        " it will show as an orphaned slot until dropped",
    )
