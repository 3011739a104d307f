"""Semantic change between two desired states: deepdiff finds what moved, the models say what it means."""

from __future__ import annotations

from typing import Any

from deepdiff import DeepDiff

from reconciler.model import DesiredState, Frozen, Monitoring, NodeDecl, SetDecl, TableDecl, format_bytes
from reconciler.secrets import redact
from reconciler.topology import Edge, edges


class NodeEntry(Frozen):
    """A node as declared on one side of the change."""

    name: str
    level: str
    upstream: str | None = None


class NodeMove(Frozen):
    """A node whose upstream changed: its rows stop flowing to `before` and start flowing to `after`."""

    name: str
    level: str
    before: str | None
    after: str | None


class FieldChange(Frozen):
    """One scalar setting before -> after; `subject` names what it belongs to (a node, a set, ...)."""

    subject: str
    field: str
    before: str | None
    after: str | None


class Link(Frozen):
    """A derived replication link: `subscriber` pulls from `provider` through `subscription`."""

    subscription: str
    provider: str
    subscriber: str
    forward_origins: tuple[str, ...]


class LinkChange(Frozen):
    """A link that stays but whose forward_origins change: pglogical drops and re-creates it."""

    subscription: str
    provider: str
    subscriber: str
    before: tuple[str, ...]
    after: tuple[str, ...]


class SetEntry(Frozen):
    name: str
    replicate: tuple[str, ...]
    tables: tuple[str, ...]


class TableEntry(Frozen):
    set_name: str
    table: str
    row_filter: str | None = None
    columns: tuple[str, ...] | None = None


class TableEdit(Frozen):
    """A table kept in a set whose filter or column list changes."""

    set_name: str
    table: str
    before: TableDecl
    after: TableDecl

    @property
    def filter_changed(self) -> bool:
        return self.before.row_filter != self.after.row_filter

    @property
    def columns_changed(self) -> bool:
        return self.before.columns != self.after.columns


class Change(Frozen):
    """Everything that differs between base and head, grouped by what a reviewer cares about."""

    base_exists: bool = True
    settings: tuple[FieldChange, ...] = ()  # engine, levels, monitoring thresholds
    levels_added: tuple[str, ...] = ()
    levels_removed: tuple[str, ...] = ()
    nodes_added: tuple[NodeEntry, ...] = ()
    nodes_removed: tuple[NodeEntry, ...] = ()
    nodes_moved: tuple[NodeMove, ...] = ()
    node_fields: tuple[FieldChange, ...] = ()  # level, dsn, admin_dsn, max_slot_wal_keep_size
    links_added: tuple[Link, ...] = ()
    links_removed: tuple[Link, ...] = ()
    links_changed: tuple[LinkChange, ...] = ()
    sets_added: tuple[SetEntry, ...] = ()
    sets_removed: tuple[SetEntry, ...] = ()
    set_fields: tuple[FieldChange, ...] = ()  # replicate flags
    tables_added: tuple[TableEntry, ...] = ()
    tables_removed: tuple[TableEntry, ...] = ()
    tables_changed: tuple[TableEdit, ...] = ()

    @property
    def empty(self) -> bool:
        return not any(getattr(self, name) for name in type(self).model_fields if name != "base_exists")


_EMPTY = DesiredState(version=1, nodes={}, replication_sets={})


def touched(base: DesiredState, head: DesiredState) -> set[tuple[str, ...]]:
    """The entities deepdiff finds different, as paths cut to the entity they belong to.

    ("nodes", n), ("replication_sets", s), ("replication_sets", s, "tables", t),
    ("replication_sets", s, "replicate"), ("levels",), ("engine",),
    ("monitoring", key), ("version",). Lists (levels, columns, replicate) count
    as one value each: a reordered column list is reported whole, not per index.
    """
    before = base.model_dump(mode="json")
    after = head.model_dump(mode="json")
    found: set[tuple[str, ...]] = set()
    # threshold_to_diff_deeper=0: by default deepdiff reports a whole dict as
    # replaced when few keys are shared, which would hide which node changed.
    tree = DeepDiff(before, after, view="tree", threshold_to_diff_deeper=0)
    for levels in tree.values():
        for level in levels:
            path: list[Any] = level.path(output_format="list")
            found.add(_entity([str(p) for p in path if isinstance(p, str)]))
    # Should a container still be reported whole, every entity in it counts as touched.
    for container in ("nodes", "replication_sets", "monitoring"):
        if (container,) in found:
            found.discard((container,))
            keys = set(before.get(container) or {}) | set(after.get(container) or {})
            found.update((container, str(key)) for key in keys)
    return found


def _entity(path: list[str]) -> tuple[str, ...]:
    if not path:
        return ()
    head = path[0]
    if head == "nodes":
        return tuple(path[:2])
    if head == "replication_sets":
        if len(path) >= 4 and path[2] == "tables":
            return tuple(path[:4])
        if len(path) >= 3 and path[2] == "replicate":
            return tuple(path[:3])
        if len(path) >= 3 and path[2] == "tables":
            return tuple(path[:2])  # the whole table map appeared or vanished
        return tuple(path[:2])
    if head == "monitoring":
        return tuple(path[:2])
    return (head,)


def _setting(field: str, value: object) -> str:
    if field in ("max_lag_bytes", "max_retained_wal") and isinstance(value, int):
        return format_bytes(value, exact=True)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _node_entry(name: str, decl: NodeDecl) -> NodeEntry:
    return NodeEntry(name=name, level=decl.level, upstream=decl.upstream)


def _set_entry(name: str, decl: SetDecl) -> SetEntry:
    return SetEntry(
        name=name, replicate=tuple(op.value for op in decl.replicate), tables=tuple(sorted(decl.tables))
    )


def _link(edge: Edge) -> Link:
    return Link(
        subscription=edge.subscription,
        provider=edge.provider,
        subscriber=edge.subscriber,
        forward_origins=edge.forward_origins,
    )


def _dsn(value: str | None) -> str | None:
    # DSNs hold no password by the loader's rule; redact anyway: output must never carry one.
    return None if value is None else redact(value)


def semantic_change(base: DesiredState | None, head: DesiredState) -> Change:
    """What the merge request changes, from `base` (None: no desired state yet) to `head`."""
    old = base if base is not None else _EMPTY
    paths = touched(old, head)
    settings: list[FieldChange] = []
    if ("engine",) in paths:
        settings.append(FieldChange(subject="network", field="engine", before=old.engine, after=head.engine))
    if ("version",) in paths and base is not None:
        settings.append(
            FieldChange(subject="network", field="version", before=str(old.version), after=str(head.version))
        )
    if ("levels",) in paths and base is not None:
        settings.append(
            FieldChange(
                subject="network",
                field="levels",
                before=", ".join(old.levels),
                after=", ".join(head.levels),
            )
        )
    for key in sorted(Monitoring.model_fields):
        if ("monitoring", key) in paths and base is not None:
            settings.append(
                FieldChange(
                    subject="monitoring",
                    field=key,
                    before=_setting(key, getattr(old.monitoring, key)),
                    after=_setting(key, getattr(head.monitoring, key)),
                )
            )

    nodes_added, nodes_removed, moved, node_fields = [], [], [], []
    for kind_name in sorted(p[1] for p in paths if p[0] == "nodes" and len(p) == 2):
        b, h = old.nodes.get(kind_name), head.nodes.get(kind_name)
        if b is None and h is not None:
            nodes_added.append(_node_entry(kind_name, h))
        elif h is None and b is not None:
            nodes_removed.append(_node_entry(kind_name, b))
        elif b is not None and h is not None:
            if b.upstream != h.upstream:
                moved.append(NodeMove(name=kind_name, level=h.level, before=b.upstream, after=h.upstream))
            for field in ("level", "dsn", "admin_dsn", "max_slot_wal_keep_size"):
                bv, hv = getattr(b, field), getattr(h, field)
                if bv != hv:
                    if field in ("dsn", "admin_dsn"):
                        bv, hv = _dsn(bv), _dsn(hv)
                    node_fields.append(FieldChange(subject=kind_name, field=field, before=bv, after=hv))

    sets_added, sets_removed, set_fields = [], [], []
    tables_added, tables_removed, tables_changed = [], [], []
    set_names = sorted({p[1] for p in paths if p[0] == "replication_sets" and len(p) >= 2})
    for set_name in set_names:
        bs, hs = old.replication_sets.get(set_name), head.replication_sets.get(set_name)
        if bs is None and hs is not None:
            sets_added.append(_set_entry(set_name, hs))
        elif hs is None and bs is not None:
            sets_removed.append(_set_entry(set_name, bs))
        if bs is not None and hs is not None and bs.replicate != hs.replicate:
            set_fields.append(
                FieldChange(
                    subject=set_name,
                    field="replicate",
                    before=", ".join(op.value for op in bs.replicate),
                    after=", ".join(op.value for op in hs.replicate),
                )
            )
        before_tables = bs.tables if bs is not None else {}
        after_tables = hs.tables if hs is not None else {}
        for table in sorted(set(before_tables) | set(after_tables)):
            bt, ht = before_tables.get(table), after_tables.get(table)
            if bt is None and ht is not None:
                tables_added.append(TableEntry(set_name=set_name, table=table, **ht.model_dump()))
            elif ht is None and bt is not None:
                tables_removed.append(TableEntry(set_name=set_name, table=table, **bt.model_dump()))
            elif bt is not None and ht is not None and bt != ht:
                tables_changed.append(TableEdit(set_name=set_name, table=table, before=bt, after=ht))

    # Derived links: the declaration above says what was written; the edges
    # say what replication does with it (a region gaining its first child
    # changes its own link's forward_origins, which pglogical cannot alter).
    old_links = {(e.subscriber, e.provider): e for e in edges(old)}
    new_links = {(e.subscriber, e.provider): e for e in edges(head)}
    links_added = [_link(new_links[k]) for k in sorted(set(new_links) - set(old_links))]
    links_removed = [_link(old_links[k]) for k in sorted(set(old_links) - set(new_links))]
    links_changed = [
        LinkChange(
            subscription=new_links[k].subscription,
            provider=k[1],
            subscriber=k[0],
            before=old_links[k].forward_origins,
            after=new_links[k].forward_origins,
        )
        for k in sorted(set(old_links) & set(new_links))
        if old_links[k].forward_origins != new_links[k].forward_origins
    ]
    return Change(
        base_exists=base is not None,
        settings=tuple(settings),
        levels_added=tuple(lv for lv in head.levels if lv not in old.levels) if base is not None else (),
        levels_removed=tuple(lv for lv in old.levels if lv not in head.levels),
        nodes_added=tuple(nodes_added),
        nodes_removed=tuple(nodes_removed),
        nodes_moved=tuple(moved),
        node_fields=tuple(node_fields),
        links_added=tuple(links_added),
        links_removed=tuple(links_removed),
        links_changed=tuple(links_changed),
        sets_added=tuple(sets_added),
        sets_removed=tuple(sets_removed),
        set_fields=tuple(set_fields),
        tables_added=tuple(tables_added),
        tables_removed=tuple(tables_removed),
        tables_changed=tuple(tables_changed),
    )
