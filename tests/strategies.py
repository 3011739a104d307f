"""Hypothesis strategies: valid desired states and arbitrary (but pglogical-possible) live ones."""

from __future__ import annotations

from hypothesis import strategies as st

from reconciler.diff import Desired, DesiredNode
from reconciler.live import LiveNode, SlotStatus, SubscriptionFacts
from reconciler.model import Engine, Migration, NodeCatalog, ReplicationSet, SetTable, Subscription

NODE_KEYS = ("n0", "n1", "n2")
OLD_NAMES = ("old0", "old1")  # pglogical node names a database may hold instead of its own
SET_NAMES = ("approved", "extra")
TABLES = ("public.approach", "public.technology", "public.tool")
FILTERS = (None, "(approved) IS NOT FALSE", "((status = 'approved'::text)) IS NOT FALSE")
COLUMNS = (None, ("id", "title"), ("approved", "id"))
FORWARD = ((), ("all",))
SLOTS = ("pgl_db_old0_sub", "pgl_db_n1_gone")
MIGRATIONS = (
    Migration(id=1, name="0001_add_summary", checksum="c1", statements=("ALTER TABLE public.tool ADD x int",),
              text="", creates=()),
    Migration(id=2, name="0002_tool", checksum="c2", statements=("CREATE TABLE public.tool ()",), text="",
              creates=("public.tool",)),
    Migration(id=3, name="0003_drop", checksum="c3", statements=("ALTER TABLE public.tool DROP x",), text="",
              leaves_first=True),
)  # fmt: skip


def dsn(key: str) -> st.SearchStrategy[str]:
    return st.sampled_from((f"host=h-{key} dbname={key}", f"host=h-{key}-new dbname={key}"))


set_tables = st.builds(
    SetTable, row_filter=st.sampled_from(FILTERS), columns=st.sampled_from(COLUMNS)
)


def replication_set(name: str) -> st.SearchStrategy[ReplicationSet]:
    return st.builds(
        ReplicationSet,
        name=st.just(name),
        replicate_insert=st.booleans(),
        replicate_update=st.booleans(),
        replicate_delete=st.booleans(),
        replicate_truncate=st.booleans(),
        tables=st.dictionaries(st.sampled_from(TABLES), set_tables, max_size=3),
    )


@st.composite
def set_maps(draw: st.DrawFn) -> dict[str, ReplicationSet]:
    names = draw(st.lists(st.sampled_from(SET_NAMES), unique=True))
    return {name: draw(replication_set(name)) for name in names}


def sub_name(subscriber: str, provider: str) -> str:
    return f"{subscriber}_from_{provider}"


@st.composite
def desired_states(draw: st.DrawFn) -> dict[str, NodeCatalog]:
    """A valid desired state: every subscription asks only sets its provider publishes."""
    sets = {key: draw(set_maps()) for key in NODE_KEYS}
    catalogs: dict[str, NodeCatalog] = {}
    for key in NODE_KEYS:
        providers = draw(st.lists(st.sampled_from([k for k in NODE_KEYS if k != key]), unique=True))
        subs = {}
        for provider in sorted(providers):
            asked = draw(st.lists(st.sampled_from(sorted(sets[provider]) or [""]), unique=True))
            name = sub_name(key, provider)
            subs[name] = Subscription(
                name=name,
                provider_node=provider,
                provider_dsn=draw(dsn(provider)),
                replication_sets=tuple(sorted(s for s in asked if s)),
                forward_origins=draw(st.sampled_from(FORWARD)),
                enabled=draw(st.booleans()),
            )
        catalogs[key] = NodeCatalog(
            node_name=key, dsn=draw(dsn(key)), sets=sets[key], subscriptions=subs
        )
    return catalogs


@st.composite
def live_catalog(draw: st.DrawFn, key: str) -> NodeCatalog:
    """Anything pglogical could hold in one database, drift and garbage included."""
    slots = tuple(sorted(draw(st.lists(st.sampled_from(SLOTS), unique=True))))
    node_name = draw(st.sampled_from((None, key, key, *OLD_NAMES)))
    if node_name is None:
        # Sets and subscriptions belong to a node: none without one.
        return NodeCatalog(orphan_slots=slots)
    subs = {}
    for provider in draw(st.lists(st.sampled_from(NODE_KEYS + OLD_NAMES), unique=True)):
        if provider == key:
            continue
        name = sub_name(key, provider)
        subs[name] = Subscription(
            name=name,
            # Usually the provider the name says; sometimes not (moved by hand).
            provider_node=draw(st.sampled_from((provider, provider, *NODE_KEYS))),
            provider_dsn=draw(dsn(provider)),
            replication_sets=tuple(sorted(draw(st.lists(st.sampled_from(SET_NAMES), unique=True)))),
            forward_origins=draw(st.sampled_from(FORWARD)),
            enabled=draw(st.booleans()),
        )
    return NodeCatalog(
        node_name=node_name,
        dsn=draw(dsn(key)),
        sets=draw(set_maps()),
        subscriptions=subs,
        orphan_slots=slots,
    )


@st.composite
def desired_and_live(draw: st.DrawFn) -> tuple[dict[str, NodeCatalog], dict[str, NodeCatalog]]:
    """A desired state and a live state where each node is either in sync or drifted."""
    desired = draw(desired_states())
    live = {
        key: draw(st.one_of(st.just(desired[key]), live_catalog(key)))
        for key in NODE_KEYS
    }
    return desired, live


def reordered(catalogs: dict[str, NodeCatalog]) -> dict[str, NodeCatalog]:
    """Same value, every dict built in reverse insertion order."""

    def rset(s: ReplicationSet) -> ReplicationSet:
        return s.model_copy(update={"tables": dict(reversed(list(s.tables.items())))})

    return {
        key: cat.model_copy(
            update={
                "sets": {n: rset(s) for n, s in reversed(list(cat.sets.items()))},
                "subscriptions": dict(reversed(list(cat.subscriptions.items()))),
            }
        )
        for key, cat in reversed(list(catalogs.items()))
    }


# -- whole live states: catalogs plus slot, sync, row and setting facts ------------------

SYSTEMS = ("sys-a", "sys-b")
WAL_SIZES = ("-1", "64MB", "1GB")


def _native(catalog: NodeCatalog) -> NodeCatalog:
    """The native engine's form: no pglogical node object."""
    return catalog.model_copy(update={"node_name": None, "dsn": None})


def settled(desired: Desired) -> dict[str, LiveNode]:
    """The live state a converged network has: every subscription synced, its slot reserved."""
    slots: dict[str, dict[str, SlotStatus]] = {key: {} for key in desired.nodes}
    for node in desired.nodes.values():
        for sub in node.catalog.subscriptions.values():
            slots.setdefault(sub.provider_node, {})[sub.name] = SlotStatus.RESERVED
    return {
        key: LiveNode(
            catalog=node.catalog,
            subscriptions={n: SubscriptionFacts(slot=n) for n in node.catalog.subscriptions},
            slots=slots[key],
            holds_rows=True,
            system_identifier=SYSTEMS[i % 2],
            max_slot_wal_keep_size=node.max_slot_wal_keep_size or "-1",
        )
        for i, (key, node) in enumerate(sorted(desired.nodes.items()))
    }


@st.composite
def desired_networks(draw: st.DrawFn, engine: Engine = Engine.PGLOGICAL) -> Desired:
    catalogs = draw(desired_states())
    wal = draw(st.sampled_from((None, *WAL_SIZES)))  # one value: nodes sharing a server agree
    return Desired(
        engine=engine,
        nodes={
            key: DesiredNode(
                catalog=_native(c) if engine is Engine.NATIVE else c,
                max_slot_wal_keep_size=wal,
            )
            for key, c in catalogs.items()
        },
    )


@st.composite
def networks(draw: st.DrawFn, engine: Engine = Engine.PGLOGICAL) -> tuple[Desired, dict[str, LiveNode]]:
    """A desired network and a live one: drifted catalogs, lost or missing slots, unfinished
    syncs, tables already marked synced, rows or none, WAL settings off, per node."""
    desired = draw(desired_networks(engine))
    # A tree over the nodes (each upstream an earlier key) and the first migrations of a release.
    keys = sorted(desired.nodes)
    upstream = {k: draw(st.sampled_from((None, *keys[:i]))) for i, k in enumerate(keys)}
    migrations = MIGRATIONS[: draw(st.integers(0, len(MIGRATIONS)))]
    desired = desired.model_copy(
        update={
            "migrations": migrations,
            "nodes": {k: n.model_copy(update={"upstream": upstream[k]}) for k, n in desired.nodes.items()},
        }
    )
    catalogs: dict[str, NodeCatalog] = {}
    for key, node in desired.nodes.items():
        live = draw(st.one_of(st.just(node.catalog), live_catalog(key)))
        catalogs[key] = _native(live) if engine is Engine.NATIVE else live
    # Which database holds the node a subscription names (pglogical: by node name).
    holder = {
        (key if engine is Engine.NATIVE else c.node_name): key
        for key, c in catalogs.items()
        if engine is Engine.NATIVE or c.node_name is not None
    }
    slots: dict[str, dict[str, SlotStatus]] = {
        key: {s: SlotStatus.RESERVED for s in c.orphan_slots} for key, c in catalogs.items()
    }
    facts: dict[str, dict[str, SubscriptionFacts]] = {}
    for key, cat in catalogs.items():
        facts[key] = {}
        for name, sub in sorted(cat.subscriptions.items()):
            provider = holder.get(sub.provider_node) if sub.provider_node in desired.nodes else None
            wanted = desired.nodes[key].catalog.subscriptions.get(name)
            kept = wanted is not None and wanted.provider_node == sub.provider_node
            # A slot of a declared subscription to its provider is never an orphan there.
            choices = [name] if kept or provider is None else [name, *catalogs[provider].orphan_slots]
            slot = draw(st.sampled_from(choices))
            status = draw(st.sampled_from((SlotStatus.RESERVED, SlotStatus.RESERVED, SlotStatus.LOST, None)))
            if provider is not None and status is not None:
                slots[provider].setdefault(slot, status)
            tables = () if engine is Engine.NATIVE else tuple(draw(st.lists(st.sampled_from(TABLES), unique=True)))
            facts[key][name] = SubscriptionFacts(
                slot=slot,
                # Only a subscription whose provider is really there can have finished its sync.
                synced=provider is not None and draw(st.booleans()),
                tables_synced=tuple(sorted(tables)),
            )
    live = {
        key: LiveNode(
            catalog=cat,
            subscriptions=facts[key],
            slots=slots[key],
            holds_rows=draw(st.booleans()),
            # Whatever ran here already, in any order (a half rolled-out release, a hand-run one).
            migrations={m.name: m.checksum for m in migrations if draw(st.booleans())},
            system_identifier=draw(st.sampled_from(SYSTEMS)),
            max_slot_wal_keep_size=draw(st.sampled_from(WAL_SIZES)),
        )
        for key, cat in catalogs.items()
    }
    return desired, live
