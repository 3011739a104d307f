"""Pure diff of one node's replication sets and the tables in them."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.actions import Action, AddTable, AlterSet, CreateSet, DropSet, RemoveTable, ReplaceTable
from reconciler.model import ReplicationSet


def _flags_only(s: ReplicationSet) -> ReplicationSet:
    """The set without its tables: set actions carry flags, tables have actions of their own."""
    return s.model_copy(update={"tables": {}})


def diff_sets(
    node: str,
    desired: Mapping[str, ReplicationSet],
    live: Mapping[str, ReplicationSet],
    subscribed: frozenset[str],
) -> list[Action]:
    """Set and table actions on `node`.

    `subscribed`: its sets that subscriptions already ask for (live ones, and
    declared ones of subscribers that were not read): only a table added to
    one of those is copied by add_table; any other gets its rows from the
    initial copy of the subscription that will ask for it.
    """
    actions: list[Action] = []
    for name in sorted(set(desired) | set(live)):
        want, have = desired.get(name), live.get(name)
        if want is None:
            # drop_replication_set takes its tables with it: no RemoveTable.
            actions.append(DropSet(node=node, name=name))
            continue
        if have is None:
            actions.append(CreateSet(node=node, set=_flags_only(want)))
            # A brand-new set usually has no subscriber yet: the subscription's
            # initial copy brings the rows, and a copy queued by add_table would
            # only race it. But a subscription that already asks for the set (it
            # was dropped by hand) never copies tables added after it started.
            actions.extend(
                AddTable(
                    node=node,
                    set_name=name,
                    table=t,
                    spec=spec,
                    synchronize_data=name in subscribed,
                )
                for t, spec in sorted(want.tables.items())
            )
            continue
        if want.operations() != have.operations():
            actions.append(AlterSet(node=node, name=name, before=_flags_only(have), after=_flags_only(want)))
        for table in sorted(set(want.tables) | set(have.tables)):
            want_t, have_t = want.tables.get(table), have.tables.get(table)
            if want_t is None:
                actions.append(RemoveTable(node=node, set_name=name, table=table))
            elif have_t is None:
                # Subscribers already using this set copy the new table's rows;
                # with none, no copy runs and the label must not say one does.
                actions.append(
                    AddTable(
                        node=node,
                        set_name=name,
                        table=table,
                        spec=want_t,
                        synchronize_data=name in subscribed,
                    )
                )
            elif want_t != have_t:
                actions.append(
                    ReplaceTable(node=node, set_name=name, table=table, before=have_t, after=want_t)
                )
    return actions
