"""Native engine statements: each typed action as PostgreSQL 15 publication/subscription SQL (pure).

Names: a replication set is a publication of the same name on every node; an
edge is a subscription named by topology.subscription_name on the
subscriber, whose slot on the provider has the same name (unique per
provider server, since the name holds subscriber and provider).
"""

from __future__ import annotations

import hashlib
from typing import assert_never

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
from reconciler.engines.pglogical_statements import drop_slot_sql, terminate_slot_sql
from reconciler.engines.settings import wal_keep_size_sql
from reconciler.errors import ApplyError
from reconciler.inspect.native import ALL_TABLES, SCHEMA_PREFIX
from reconciler.model import ReplicationSet, SetTable, Subscription
from reconciler.replica_identity import IdentityKind, ReplicaIdentity
from reconciler.row_filter import filter_sql


def table_ident(table: str) -> sql.Identifier:
    schema, _, name = table.partition(".")
    return sql.Identifier(schema, name)


def publish_option(s: ReplicationSet) -> sql.Composed:
    """`publish = '...'`: the operations the set replicates (truncate only when declared)."""
    return sql.SQL("publish = {}").format(sql.Literal(", ".join(s.operations())))


def create_publication_sql(s: ReplicationSet) -> sql.Composed:
    # Created empty: each table is an AddTable of its own (after its replica identity).
    return sql.SQL("CREATE PUBLICATION {name} WITH ({publish})").format(
        name=sql.Identifier(s.name), publish=publish_option(s)
    )


def alter_publication_sql(s: ReplicationSet) -> sql.Composed:
    return sql.SQL("ALTER PUBLICATION {name} SET ({publish})").format(
        name=sql.Identifier(s.name), publish=publish_option(s)
    )


def drop_publication_sql(name: str) -> sql.Composed:
    return sql.SQL("DROP PUBLICATION IF EXISTS {name}").format(name=sql.Identifier(name))


def table_spec_sql(table: str, spec: SetTable) -> sql.Composed:
    """`schema.table (cols) WHERE (filter)`.

    CREATE PUBLICATION needs the filter as SQL text: it is the text
    row_filter.filter_sql writes from the filter's parse tree (identifiers
    quoted, constants written to read the same with any
    standard_conforming_strings), never the text a plan or a test holds.
    """
    parts: list[sql.Composable] = [table_ident(table)]
    if spec.columns is not None:
        parts.append(sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns)))
    if spec.row_filter is not None:
        text = filter_sql(spec.row_filter, server_forms=True)
        parts.append(sql.SQL("WHERE ({})").format(sql.SQL(text)))
    return sql.SQL(" ").join(parts)


def add_table_sql(set_name: str, table: str, spec: SetTable) -> sql.Composed:
    return sql.SQL("ALTER PUBLICATION {name} ADD TABLE {spec}").format(
        name=sql.Identifier(set_name), spec=table_spec_sql(table, spec)
    )


def remove_table_sql(set_name: str, table: str) -> sql.Composed:
    if table.startswith(SCHEMA_PREFIX):
        return sql.SQL("ALTER PUBLICATION {name} DROP TABLES IN SCHEMA {schema}").format(
            name=sql.Identifier(set_name), schema=sql.Identifier(table.removeprefix(SCHEMA_PREFIX))
        )
    return sql.SQL("ALTER PUBLICATION {name} DROP TABLE {table}").format(
        name=sql.Identifier(set_name), table=table_ident(table)
    )


def identity_index_name(table: str, columns: tuple[str, ...]) -> str:
    """Deterministic name of the unique index reconcile creates for a replica identity (<= 63 bytes)."""
    digest = hashlib.sha256(f"{table}\0{','.join(columns)}".encode()).hexdigest()[:8]
    return f"{table.partition('.')[2][:40]}_reconcile_ri_{digest}"


def replica_identity_sql(table: str, identity: ReplicaIdentity) -> list[sql.Composed]:
    match identity.kind:
        case IdentityKind.FULL:
            return [sql.SQL("ALTER TABLE {table} REPLICA IDENTITY FULL").format(table=table_ident(table))]
        case IdentityKind.INDEX if identity.columns:
            index = identity_index_name(table, identity.columns)
            return [
                # Unique because it holds the whole primary key; its columns are NOT
                # NULL (preflight), as a replica identity index requires.
                sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {table} ({columns})").format(
                    index=sql.Identifier(index),
                    table=table_ident(table),
                    columns=sql.SQL(", ").join(sql.Identifier(c) for c in identity.columns),
                ),
                sql.SQL("ALTER TABLE {table} REPLICA IDENTITY USING INDEX {index}").format(
                    table=table_ident(table), index=sql.Identifier(index)
                ),
            ]
        case _:
            # The diff only asks for an index or FULL; anything else is a bug upstream.
            raise ApplyError(f"replica identity {identity} is not one reconcile sets")


def create_subscription_sql(s: Subscription, *, copy_data: bool, enabled: bool | None = None) -> sql.Composed:
    """The slot is named after the subscription (PostgreSQL's default, written out)."""
    return sql.SQL(
        "CREATE SUBSCRIPTION {name} CONNECTION {dsn} PUBLICATION {pubs}"
        " WITH (copy_data = {copy}, enabled = {enabled}, slot_name = {slot})"
    ).format(
        name=sql.Identifier(s.name),
        dsn=sql.Literal(s.provider_dsn),
        pubs=sql.SQL(", ").join(sql.Identifier(p) for p in s.replication_sets),
        copy=sql.Literal(copy_data),
        enabled=sql.Literal(s.enabled if enabled is None else enabled),
        slot=sql.Literal(s.name),
    )


def set_publication_sql(s: Subscription) -> sql.Composed:
    # refresh = true: tables of added publications start at once and their rows are copied.
    return sql.SQL(
        "ALTER SUBSCRIPTION {name} SET PUBLICATION {pubs} WITH (refresh = true, copy_data = true)"
    ).format(
        name=sql.Identifier(s.name), pubs=sql.SQL(", ").join(sql.Identifier(p) for p in s.replication_sets)
    )


def connection_sql(s: Subscription) -> sql.Composed:
    return sql.SQL("ALTER SUBSCRIPTION {name} CONNECTION {dsn}").format(
        name=sql.Identifier(s.name), dsn=sql.Literal(s.provider_dsn)
    )


def enable_sql(name: str, enabled: bool) -> sql.Composed:
    verb = sql.SQL("ENABLE" if enabled else "DISABLE")
    return sql.SQL("ALTER SUBSCRIPTION {name} {verb}").format(name=sql.Identifier(name), verb=verb)


def refresh_sql(name: str) -> sql.Composed:
    return sql.SQL("ALTER SUBSCRIPTION {name} REFRESH PUBLICATION WITH (copy_data = true)").format(
        name=sql.Identifier(name)
    )


def drop_subscription_sql(name: str) -> sql.Composed:
    return sql.SQL("DROP SUBSCRIPTION IF EXISTS {name}").format(name=sql.Identifier(name))


def detach_slot_sql(name: str) -> list[sql.Composed]:
    """Let a subscription be dropped while its provider is unreachable: the slot stays there."""
    return [
        enable_sql(name, False),
        sql.SQL("ALTER SUBSCRIPTION {name} SET (slot_name = NONE)").format(name=sql.Identifier(name)),
        drop_subscription_sql(name),
    ]


def alter_subscription_sql(before: Subscription, after: Subscription) -> list[sql.Composed]:
    """Each change its own statement: SET PUBLICATION with refresh cannot run in a transaction block."""
    stmts: list[sql.Composed] = []
    if before.provider_dsn != after.provider_dsn:
        stmts.append(connection_sql(after))
    if sorted(before.replication_sets) != sorted(after.replication_sets):
        stmts.append(set_publication_sql(after))
    if before.enabled != after.enabled:
        stmts.append(enable_sql(after.name, after.enabled))
    return stmts


def advance_origin_sql(name: str, lsn: str) -> sql.Composed:
    """Start a (disabled) subscription after `lsn`: its origin is pg_<subscription oid>."""
    return sql.SQL(
        "SELECT pg_replication_origin_advance('pg_' || s.oid, {lsn}::pg_lsn) FROM pg_subscription s"
        " WHERE s.subname = {name}"
        " AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).format(lsn=sql.Literal(lsn), name=sql.Literal(name))


def statements(action: Action, *, recreate: ReplicationSet | None = None) -> list[sql.Composed]:
    """What `action` runs on `action.node`: the native engine's only SQL.

    `recreate`: the publication's flags when it is FOR ALL TABLES on the node
    (engine execute reads it). PostgreSQL cannot narrow such a publication
    (no ALTER), so AddTable and RemoveTable of "ALL TABLES" re-create it empty
    with the same operations first, in one transaction.
    """
    match action:
        case CreateSet():
            return [create_publication_sql(action.set)]
        case AlterSet():
            return [alter_publication_sql(action.after)]
        case DropSet():
            return [drop_publication_sql(action.name)]
        case SetReplicaIdentity():
            return replica_identity_sql(action.table, ReplicaIdentity.parse(action.after))
        case AddTable():
            return [*_recreate(recreate), add_table_sql(action.set_name, action.table, action.spec)]
        case ReplaceTable():
            # One transaction: decoding reads publications with a historic
            # snapshot, so no change falls between drop and add.
            return [
                remove_table_sql(action.set_name, action.table),
                add_table_sql(action.set_name, action.table, action.after),
            ]
        case RemoveTable():
            if action.table == ALL_TABLES:
                return _recreate(recreate)
            return [remove_table_sql(action.set_name, action.table)]
        case CreateSubscription():
            return [create_subscription_sql(action.subscription, copy_data=action.copy_data)]
        case AlterSubscription():
            return alter_subscription_sql(action.before, action.after)
        case RefreshSubscription():
            return [refresh_sql(action.name)]
        case RestartSubscription():
            # The launcher starts the apply worker of an enabled subscription
            # at once; its own retry waits wal_retrieve_retry_interval.
            return [enable_sql(action.name, False), enable_sql(action.name, True)]
        case ReplaceSubscription():
            # No initial copy: the subscriber holds the provider's older rows
            # and a COPY would fail on their keys; `verify --repair` fills the gap.
            return [
                *(drop_subscription_sql(name) for name in sorted({action.before.name, action.after.name})),
                create_subscription_sql(action.after, copy_data=False),
            ]
        case SwitchSubscription():
            return [
                create_subscription_sql(action.after, copy_data=False, enabled=False),
                sql.SQL(
                    "-- wait until pglogical subscription {} has applied past the new slot's start"
                ).format(sql.SQL(action.before.name)),
                sql.SQL("SELECT pglogical.alter_subscription_disable({name}, immediate := true)").format(
                    name=sql.Literal(action.before.name)
                ),
                advance_origin_sql(action.after.name, "<pglogical origin position>"),
                enable_sql(action.after.name, True),
                sql.SQL("SELECT pglogical.drop_subscription({name}, ifexists := true)").format(
                    name=sql.Literal(action.before.name)
                ),
            ]
        case DropSubscription():
            return [drop_subscription_sql(action.name)]
        case DropSlot():
            return [terminate_slot_sql(action.slot), drop_slot_sql(action.slot)]
        case SetWalKeepSize():
            return wal_keep_size_sql(action.after)
        case RunMigration():
            return migrations.statements(action)
        case CreateHeartbeat():
            return heartbeat.statements(action)
        case CreateNode() | ChangeNodeDsn() | DropNode():
            raise ApplyError(f"{action.kind}: {unsupported(action)}")
        case _:
            assert_never(action)


def unsupported(action: Action) -> str | None:
    """Why the native engine cannot run `action`, None when it can."""
    match action:
        case CreateNode() | ChangeNodeDsn() | DropNode():
            return f"{action.kind} does not exist in the native engine (it has no nodes)"
        case _:
            return None


def _recreate(current: ReplicationSet | None) -> list[sql.Composed]:
    if current is None:
        return []
    return [drop_publication_sql(current.name), create_publication_sql(current)]
