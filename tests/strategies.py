"""Hypothesis strategies: valid desired NodeCatalogs and arbitrary (but pglogical-possible) live ones."""

from __future__ import annotations

from hypothesis import strategies as st

from reconciler.model import NodeCatalog, ReplicationSet, SetTable, Subscription

NODE_KEYS = ("n0", "n1", "n2")
OLD_NAMES = ("old0", "old1")  # pglogical node names a database may hold instead of its own
SET_NAMES = ("approved", "extra")
TABLES = ("public.approach", "public.technology", "public.tool")
FILTERS = (None, "(approved) IS NOT FALSE", "((status = 'approved'::text)) IS NOT FALSE")
COLUMNS = (None, ("id", "title"), ("approved", "id"))
FORWARD = ((), ("all",))
SLOTS = ("pgl_db_old0_sub", "pgl_db_n1_gone")


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
