"""Pure simulator: applies actions to in-memory live states the way pglogical (or PostgreSQL) would.

It refuses what the server refuses or what would leave a subscription
`down` (a step before its needs), and what would make a label lie (an
`initial copy` that pglogical skips, a native table never refreshed), so
property tests check the diff (result equals desired), the order, and the
flags together. Slots, sync state, rows and server settings move with the
catalogs: a plan that forgets a lost slot or a WAL setting does not converge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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
from reconciler.heartbeat import HEARTBEAT_TABLE
from reconciler.live import LiveNode, SlotStatus, SubscriptionFacts
from reconciler.model import Engine, NodeCatalog, Subscription


class SimulationError(AssertionError):
    """An action that the server would refuse, that breaks a subscription, or whose label lies."""


def simulate(catalogs: Mapping[str, NodeCatalog], actions: Iterable[Action]) -> dict[str, NodeCatalog]:
    """The catalogs after running `actions` in the order given (no slot, sync or row facts).

    Catalogs alone say nothing of which tables exist: as `diff` does, every
    node is taken to hold them, the tool's heartbeat table included.
    """
    tables = {HEARTBEAT_TABLE: ("node", "beat_at")}
    after = simulate_live({name: LiveNode(catalog=c, columns=tables) for name, c in catalogs.items()}, actions)
    return {name: node.catalog for name, node in after.items()}


def simulate_live(
    live: Mapping[str, LiveNode], actions: Iterable[Action], *, engine: Engine = Engine.PGLOGICAL
) -> dict[str, LiveNode]:
    """The live states after running `actions` in the order given."""
    actions = list(actions)
    world = _World(dict(live), engine)
    # What a subscription this plan drops would have copied does not matter:
    # labels speak of the subscriptions that stay.
    world.dropped = {(a.node, a.name) for a in actions if isinstance(a, DropSubscription)}
    for action in actions:
        world.run(action)
    if world.refresh_due:
        raise SimulationError(f"native subscriptions never refreshed: {sorted(world.refresh_due)}")
    return world.state


class _World:
    def __init__(self, state: dict[str, LiveNode], engine: Engine) -> None:
        self.state = state
        self.engine = engine
        # Native: (subscriber, subscription) whose provider's publication gained a
        # table: the table reaches it only after REFRESH PUBLICATION.
        self.refresh_due: set[tuple[str, str]] = set()
        # (subscriber, subscription, table) copied by an earlier step of this run
        # (the same table added to two sets is copied once).
        self.copied: set[tuple[str, str, str]] = set()
        self.dropped: set[tuple[str, str]] = set()  # (subscriber, subscription) the plan drops

    # -- lookups ----------------------------------------------------------------

    def provider_key(self, provider_node: str) -> str | None:
        """The database holding the provider: by pglogical node name, or (native) by node key."""
        for key, node in self.state.items():
            if node.catalog.node_name == provider_node:
                return key
        if self.engine is Engine.NATIVE and provider_node in self.state:
            return provider_node
        return None

    def check_provider_sets(self, sub: Subscription) -> None:
        key = self.provider_key(sub.provider_node)
        if key is None:
            raise SimulationError(f"subscription {sub.name}: provider {sub.provider_node} missing")
        missing = set(sub.replication_sets) - set(self.state[key].catalog.sets)
        if missing:
            raise SimulationError(f"subscription {sub.name}: provider {sub.provider_node} lacks sets {sorted(missing)}")

    def subscribers(self, provider: str, set_name: str) -> list[tuple[str, str]]:
        """(subscriber, subscription) asking `provider` (a key) for `set_name`."""
        return [
            (key, sub.name)
            for key, node in sorted(self.state.items())
            for sub in node.catalog.subscriptions.values()
            if self.provider_key(sub.provider_node) == provider and set_name in sub.replication_sets
        ]

    def slots_in_use(self) -> set[tuple[str | None, str]]:
        """(database key, slot) every subscription streams from."""
        return {
            (self.provider_key(p), slot) for node in self.state.values() for p, slot in node.slots_in_use()
        }

    def set_slot(self, provider_node: str, slot: str, status: SlotStatus | None) -> None:
        key = self.provider_key(provider_node)
        if key is None:
            return
        node = self.state[key]
        slots = dict(node.slots)
        if status is None:
            slots.pop(slot, None)
        else:
            if self.engine is Engine.NATIVE and slot in slots:
                raise SimulationError(f"{key}: replication slot {slot} already exists")
            slots[slot] = status
        # A slot that goes is no orphan any longer either.
        orphans = tuple(s for s in node.catalog.orphan_slots if s in slots or s != slot)
        self.state[key] = node.model_copy(
            update={"slots": slots, "catalog": node.catalog.model_copy(update={"orphan_slots": orphans})}
        )

    def update(self, key: str, **changes: object) -> None:
        self.state[key] = self.state[key].model_copy(update=changes)

    def catalog(self, key: str, **changes: object) -> None:
        self.update(key, catalog=self.state[key].catalog.model_copy(update=changes))

    # -- actions ------------------------------------------------------------------

    def run(self, action: Action) -> None:
        key = action.node
        node = self.state[key]
        cat = node.catalog

        def need_node() -> None:
            if self.engine is Engine.PGLOGICAL and cat.node_name is None:
                raise SimulationError(f"{action.kind} on {key}: no pglogical node")

        match action:
            case CreateNode():
                if cat.node_name is not None:
                    raise SimulationError(f"{key}: one local node per database")
                self.catalog(key, node_name=action.name, dsn=action.dsn)
            case ChangeNodeDsn():
                need_node()
                self.catalog(key, dsn=action.after)
            case DropNode():
                if cat.node_name != action.name:
                    raise SimulationError(f"{key}: node {action.name} is not here")
                if cat.subscriptions:
                    raise SimulationError(f"{key}: drop_node with subscriptions")
                for other in self.state.values():
                    for sub in other.catalog.subscriptions.values():
                        if sub.provider_node == action.name:
                            raise SimulationError(f"{key}: slot of {sub.name} still active")
                # drop_node drops the node's sets (with tables) and its slots.
                self.update(key, catalog=NodeCatalog(), subscriptions={}, legacy={}, slots={})
            case CreateSet():
                need_node()
                if action.set.name in cat.sets:
                    raise SimulationError(f"{key}: set {action.set.name} exists")
                if action.set.tables:
                    raise SimulationError("CreateSet carries flags only")
                self.catalog(key, sets={**cat.sets, action.set.name: action.set})
            case AlterSet():
                if action.name not in cat.sets:
                    raise SimulationError(f"{key}: alter of missing set {action.name}")
                changed = action.after.model_copy(update={"tables": cat.sets[action.name].tables})
                self.catalog(key, sets={**cat.sets, action.name: changed})
            case DropSet():
                if action.name not in cat.sets:
                    raise SimulationError(f"{key}: drop of missing set {action.name}")
                users = self.subscribers(key, action.name)
                if users:
                    raise SimulationError(f"{key}: set {action.name} dropped while {users} use it")
                self.catalog(key, sets={n: s for n, s in cat.sets.items() if n != action.name})
            case AddTable() | ReplaceTable() | RemoveTable():
                self.table_action(action)
            case SetReplicaIdentity():
                self.catalog(key, replica_identities={**cat.replica_identities, action.table: action.after})
            case CreateSubscription():
                need_node()
                sub = action.subscription
                if sub.name in cat.subscriptions:
                    raise SimulationError(f"{key}: subscription {sub.name} exists")
                self.check_provider_sets(sub)
                if action.copy_data and node.holds_rows:
                    raise SimulationError(f"{key}: initial COPY of {sub.name} onto rows fails on their keys")
                self.set_slot(sub.provider_node, sub.name, SlotStatus.RESERVED)
                copied = self.tables_of(sub) if action.copy_data else ()
                self.catalog(key, subscriptions={**cat.subscriptions, sub.name: sub})
                facts = SubscriptionFacts(slot=sub.name, tables_synced=copied)
                self.update(key, subscriptions={**self.state[key].subscriptions, sub.name: facts})
                self.refresh_due.discard((key, sub.name))
            case AlterSubscription():
                if cat.subscriptions.get(action.before.name) != action.before:
                    raise SimulationError(f"{key}: {action.before.name} is not as planned")
                self.check_provider_sets(action.after)
                self.catalog(key, subscriptions={**cat.subscriptions, action.after.name: action.after})
                if action.copy_data:  # native SET PUBLICATION refreshes too
                    self.refresh_due.discard((key, action.after.name))
            case ReplaceSubscription():
                if cat.subscriptions.get(action.before.name) != action.before:
                    raise SimulationError(f"{key}: {action.before.name} is not as planned")
                self.check_provider_sets(action.after)
                old = node.subscriptions.get(action.before.name)
                if old is not None:
                    self.set_slot(action.before.provider_node, old.slot, None)
                self.set_slot(action.after.provider_node, action.after.name, SlotStatus.RESERVED)
                self.catalog(key, subscriptions={**cat.subscriptions, action.after.name: action.after})
                facts = SubscriptionFacts(slot=action.after.name)
                self.update(key, subscriptions={**self.state[key].subscriptions, action.after.name: facts})
                self.refresh_due.discard((key, action.after.name))
            case DropSubscription():
                self.drop_subscription(key, action)
            case SwitchSubscription():
                if cat.legacy_subscriptions.get(action.before.name) != action.before:
                    raise SimulationError(f"{key}: pglogical {action.before.name} is not as planned")
                self.check_provider_sets(action.after)
                old = node.legacy.get(action.before.name)
                if old is not None:
                    self.set_slot(action.before.provider_node, old.slot, None)
                self.set_slot(action.after.provider_node, action.after.name, SlotStatus.RESERVED)
                legacy = {n: s for n, s in cat.legacy_subscriptions.items() if n != action.before.name}
                subs = {**cat.subscriptions, action.after.name: action.after}
                self.catalog(key, legacy_subscriptions=legacy, subscriptions=subs)
                facts = SubscriptionFacts(slot=action.after.name)
                self.update(
                    key,
                    legacy={n: f for n, f in node.legacy.items() if n != action.before.name},
                    subscriptions={**self.state[key].subscriptions, action.after.name: facts},
                )
            case RefreshSubscription():
                if action.name not in cat.subscriptions:
                    raise SimulationError(f"{key}: refresh of missing {action.name}")
                self.refresh_due.discard((key, action.name))
            case RestartSubscription():
                facts = self.state[key].subscriptions.get(action.name)
                if action.name not in cat.subscriptions or facts is None:
                    raise SimulationError(f"{key}: restart of missing {action.name}")
                running = facts.model_copy(update={"worker_running": True, "down_seconds": None, "last_error": None})
                self.update(key, subscriptions={**self.state[key].subscriptions, action.name: running})
            case RunMigration():
                m = action.migration
                if m.name in node.migrations:
                    raise SimulationError(f"{key}: migration {m.name} runs twice")
                # Tier by tier: the nodes named to go first have it (an additive one
                # reaches every subscriber before its provider sends the new shape).
                for other in action.after:
                    if m.name not in self.state[other].migrations:
                        raise SimulationError(f"{key}: migration {m.name} before {other}")
                self.update(key, migrations={**node.migrations, m.name: m.checksum})
            case CreateHeartbeat():
                if HEARTBEAT_TABLE in node.columns:
                    raise SimulationError(f"{key}: {HEARTBEAT_TABLE} created twice")
                self.update(key, columns={**node.columns, HEARTBEAT_TABLE: ("node", "beat_at")})
            case SetWalKeepSize():
                for other, state in self.state.items():
                    if state.system_identifier == node.system_identifier:
                        self.update(other, max_slot_wal_keep_size=action.after)
            case DropSlot():
                if action.slot not in cat.orphan_slots and action.slot not in node.slots:
                    raise SimulationError(f"{key}: slot {action.slot} missing")
                if (key, action.slot) in self.slots_in_use():
                    raise SimulationError(f"{key}: slot {action.slot} dropped while a subscription streams from it")
                self.catalog(key, orphan_slots=tuple(s for s in cat.orphan_slots if s != action.slot))
                self.update(key, slots={s: v for s, v in self.state[key].slots.items() if s != action.slot})

    def tables_of(self, sub: Subscription) -> tuple[str, ...]:
        key = self.provider_key(sub.provider_node)
        sets = self.state[key].catalog.sets if key is not None else {}
        return tuple(sorted({t for s in sub.replication_sets if s in sets for t in sets[s].tables}))

    def drop_subscription(self, key: str, action: DropSubscription) -> None:
        node = self.state[key]
        cat = node.catalog
        if action.name in cat.subscriptions:
            facts = node.subscriptions.get(action.name)
            self.catalog(key, subscriptions={n: s for n, s in cat.subscriptions.items() if n != action.name})
            self.update(key, subscriptions={n: f for n, f in node.subscriptions.items() if n != action.name})
        elif action.name in cat.legacy_subscriptions:
            facts = node.legacy.get(action.name)
            legacy = {n: s for n, s in cat.legacy_subscriptions.items() if n != action.name}
            self.catalog(key, legacy_subscriptions=legacy)
            self.update(key, legacy={n: f for n, f in node.legacy.items() if n != action.name})
        else:
            raise SimulationError(f"{key}: drop of missing {action.name}")
        if facts is not None:
            self.set_slot(action.provider_node, facts.slot, None)
        self.refresh_due.discard((key, action.name))

    def table_action(self, action: AddTable | ReplaceTable | RemoveTable) -> None:
        key = action.node
        cat = self.state[key].catalog
        if action.set_name not in cat.sets:
            raise SimulationError(f"{key}: set {action.set_name} missing")
        tables = dict(cat.sets[action.set_name].tables)
        present = action.table in tables
        if isinstance(action, AddTable):
            if present:
                raise SimulationError(f"{key}: {action.table} already in set")
            users = self.subscribers(key, action.set_name)
            if action.table == HEARTBEAT_TABLE:
                # The tool's table is created by the plan itself: here and at every
                # subscriber a queued copy reaches, before it joins the set.
                for where in [key, *(subscriber for subscriber, _ in users)]:
                    if HEARTBEAT_TABLE not in self.state[where].columns:
                        raise SimulationError(f"{where}: {HEARTBEAT_TABLE} used before it exists")
            if self.engine is Engine.PGLOGICAL and not action.synchronize_data and users:
                # A running subscription copies only the tables its set held
                # when it started: rows of this one would never arrive.
                raise SimulationError(f"{key}: {action.table} added to {action.set_name} without copy while subscribed")
            for subscriber, name in users:
                self.deliver(subscriber, name, action)
            tables[action.table] = action.spec
        elif not present:
            raise SimulationError(f"{key}: {action.table} not in set")
        elif isinstance(action, ReplaceTable):
            if tables[action.table] != action.before:
                raise SimulationError(f"{key}: {action.table} before differs")
            tables[action.table] = action.after
        else:
            del tables[action.table]
        changed = cat.sets[action.set_name].model_copy(update={"tables": tables})
        self.catalog(key, sets={**cat.sets, action.set_name: changed})

    def deliver(self, subscriber: str, name: str, action: AddTable) -> None:
        """A subscriber of the set learns of the added table, as its engine does."""
        if self.engine is Engine.NATIVE:
            self.refresh_due.add((subscriber, name))
            return
        facts = self.state[subscriber].subscriptions.get(name)
        if facts is None:
            return  # nothing known of its sync state: nothing to check
        if (subscriber, name, action.table) in self.copied or (subscriber, name) in self.dropped:
            return
        if action.table in facts.tables_synced:
            # pglogical skips the queued sync of a table already marked synced.
            if subscriber not in action.synced_at:
                raise SimulationError(
                    f"{action.node}: {action.table} labelled as copied to {subscriber}, which already marks it synced"
                )
            return
        # Labelled `needs verify` where the copy does run (a subscriber with
        # another subscription to this provider that marks the table synced,
        # one that this plan re-creates or changes): cautious, not a lie that
        # loses rows; verify then finds nothing. Only the other way round is.
        self.copied.add((subscriber, name, action.table))
        copied = facts.model_copy(update={"tables_synced": tuple(sorted({*facts.tables_synced, action.table}))})
        self.update(subscriber, subscriptions={**self.state[subscriber].subscriptions, name: copied})
