"""Derived topology: who subscribes to whom, with which sets and forward_origins.

This is the one place where the declaration turns into replication edges and
per-node catalogs. Everything else (plan, apply, status, verify, review)
reads edges from here.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict

from reconciler.heartbeat import HEARTBEAT_TABLE
from reconciler.model import (
    DesiredState,
    Engine,
    NodeCatalog,
    Operation,
    ReplicationSet,
    SetTable,
    Subscription,
)
from reconciler.row_filter import FilterRefused, filter_sql

# PostgreSQL identifiers (and so slot and subscription names) are at most 63 bytes.
MAX_IDENTIFIER = 63

FORWARD_ALL: tuple[str, ...] = ("all",)
FORWARD_NONE: tuple[str, ...] = ()


class Edge(BaseModel):
    """One replication link: `subscriber` pulls `sets` from `provider`."""

    model_config = ConfigDict(frozen=True)

    subscriber: str
    provider: str
    subscription: str
    sets: tuple[str, ...]
    forward_origins: tuple[str, ...]


def subscription_name(subscriber: str, provider: str) -> str:
    """Deterministic subscription name, unique per (subscriber, provider).

    ``<subscriber>_from_<provider>`` when it fits in 63 bytes. Otherwise both
    names are cut to 24 characters and an 8-hex-digit hash of the full pair is
    appended, so that two long names that share a prefix stay distinct. The
    subscriber is part of the name because a provider's slots (named after the
    subscription, natively; partly, in pglogical) must stay unique while a
    node moves from one upstream to another.
    """
    full = f"{subscriber}_from_{provider}"
    if len(full) <= MAX_IDENTIFIER:
        return full
    digest = hashlib.sha256(f"{subscriber}\0{provider}".encode()).hexdigest()[:8]
    return f"{subscriber[:24]}_from_{provider[:24]}_{digest}"


def edges(state: DesiredState) -> list[Edge]:
    """One edge per node with an upstream, sorted by (subscriber, provider).

    forward_origins: a subscriber whose provider has children of its own must
    forward all origins, or rows from further down never get past the provider
    (REPLICATION-NOTES "Cascading"). A provider that is a leaf gets `{}`:
    nothing it could ever receive is sent back (no loops).
    """
    result: list[Edge] = []
    sets = tuple(sorted(state.replication_sets))
    has_children = {decl.upstream for decl in state.nodes.values() if decl.upstream is not None}
    for provider, decl in sorted(state.nodes.items()):
        if decl.upstream is None:
            continue
        forward = FORWARD_ALL if provider in has_children else FORWARD_NONE
        result.append(
            Edge(
                subscriber=decl.upstream,
                provider=provider,
                subscription=subscription_name(decl.upstream, provider),
                sets=sets,
                forward_origins=forward,
            )
        )
    return sorted(result, key=lambda e: (e.subscriber, e.provider))


def installed_filter(row_filter: str | None, engine: Engine) -> str | None:
    """The filter text to install for a declared filter.

    pglogical evaluates a DELETE's filter on the old tuple, which holds only
    the key: every other column is NULL, so a plain filter drops the delete.
    ``(<filter>) IS NOT FALSE`` lets it through, and behaves exactly like the
    plain filter on inserts and updates when every column it reads is
    NOT NULL (REPLICATION-NOTES "Row filters lose data"). The native engine
    evaluates old and new tuples itself and takes the filter itself.

    Built from the filter's re-emitted text (row_filter.filter_sql), never
    from the text as written. A refused filter (a DesiredState that did not
    come through the loader) keeps its text here only to be reported:
    inspection refuses it before it reaches a node, and every statement
    builder re-emits what it sends.
    """
    if row_filter is None:
        return None
    try:
        text = filter_sql(row_filter)
    except FilterRefused:
        text = f"({row_filter})"
    if engine == Engine.PGLOGICAL:
        # filter_sql's text is a name, a call or parenthesised: no parentheses needed.
        return f"({text} IS NOT FALSE)"
    return text


def desired_catalogs(state: DesiredState) -> dict[str, NodeCatalog]:
    """The catalog every declared node should hold, keyed by node name.

    Row filters here are the text to install, not yet normalised by
    PostgreSQL; `inspect` normalises them on the node before the diff.
    """
    sets: dict[str, ReplicationSet] = {}
    for set_name, decl in sorted(state.replication_sets.items()):
        ops = set(decl.replicate)
        sets[set_name] = ReplicationSet(
            name=set_name,
            replicate_insert=Operation.INSERT in ops,
            replicate_update=Operation.UPDATE in ops,
            replicate_delete=Operation.DELETE in ops,
            replicate_truncate=Operation.TRUNCATE in ops,
            tables={
                table: SetTable(
                    row_filter=installed_filter(t.row_filter, state.engine),
                    columns=tuple(sorted(t.columns)) if t.columns is not None else None,
                )
                for table, t in sorted(decl.tables.items())
            },
        )
        if state.monitoring.heartbeat:
            # The tool's own table, in every set with no filter (every beat passes):
            # whatever sets an edge carries, the leaf's beat travels with them.
            tables = {**sets[set_name].tables, HEARTBEAT_TABLE: SetTable()}
            sets[set_name] = sets[set_name].model_copy(update={"tables": dict(sorted(tables.items()))})
    subs: dict[str, dict[str, Subscription]] = {name: {} for name in state.nodes}
    native = state.engine == Engine.NATIVE
    for edge in edges(state):
        subs[edge.subscriber][edge.subscription] = Subscription(
            name=edge.subscription,
            provider_node=edge.provider,
            provider_dsn=state.nodes[edge.provider].dsn,
            replication_sets=edge.sets,
            # PostgreSQL 15 subscriptions have no origin option: they always
            # forward every origin (harmless here: the tree flows one way).
            forward_origins=FORWARD_ALL if native else edge.forward_origins,
            enabled=True,
        )
    return {
        name: NodeCatalog(
            # The native engine has no node object: publications and
            # subscriptions belong to the database itself.
            node_name=None if native else name,
            dsn=None if native else decl.dsn,
            sets=dict(sets),
            subscriptions=dict(sorted(subs[name].items())),
        )
        for name, decl in sorted(state.nodes.items())
    }

