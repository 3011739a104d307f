"""Inspection against real pglogical servers: exact reads, filter normalisation, one round trip, unreachable nodes."""

from __future__ import annotations

import ctypes
import json
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from conftest import DEFAULT_SCHEMA
from support import cli

from reconciler.db import short_reason
from reconciler.filter_parse import FUNCTION_LIST, WHY
from reconciler.health.reader import read_node
from reconciler.inspect import inspect_network, inspect_node
from reconciler.inspect.filter_cache import FILE_NAME, FilterCache
from reconciler.inspect.slots import is_native_table_sync, orphans, serves
from reconciler.model import DesiredState, NodeCatalog, ReplicationSet, SetTable, Subscription
from reconciler.preflight import preflight
from reconciler.topology import desired_catalogs, installed_filter

TRACE_LINE = re.compile(r"^[^\t\n]+\t([FB])\t\d+\t(\w+)", re.MULTILINE)
TECH = "public.technology"
APPROACH = "public.approach"

# Declared filter -> what pg_get_expr gives after replication_set_add_table
# with the installed form `(<filter>) IS NOT FALSE` (measured on 2.4.2 / PG 15).
EXPECTED = {
    "approved": "(approved IS NOT FALSE)",
    "status = 'approved'": "((status = 'approved'::text) IS NOT FALSE)",
}


# --------------------------------------------------------------------------
# pure
# --------------------------------------------------------------------------


def test_short_reason_strips_passwords_and_keeps_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "env-s3cret")
    dsn = "host=db port=5432 dbname=x user=u password=dsn-s3cret"
    message = (
        'connection failed: connection to server at "db" failed: FATAL:  '
        "password authentication failed (tried env-s3cret and dsn-s3cret)\n\tmore detail"
    )
    reason = short_reason(message, dsn)
    assert "s3cret" not in reason
    assert "\n" not in reason
    assert reason.startswith('connection to server at "db" failed')
    assert reason.endswith("more detail")
    assert len(short_reason("x" * 1000, dsn)) == 300


# --------------------------------------------------------------------------
# real servers
# --------------------------------------------------------------------------


def _filters(facts: Any, which: str) -> dict[tuple[str, str], str | None]:
    catalog: NodeCatalog = getattr(facts, which)
    return {(s, t): entry.row_filter for s, rset in catalog.sets.items() for t, entry in rset.tables.items()}


@pytest.mark.server
def test_fresh_network_empty_live_and_desired_filters_normalised(network: Any) -> None:
    net = network()
    result = inspect_network(net.state)
    assert result.unreachable == {}
    assert sorted(result.facts) == sorted(net.state.nodes)
    for name, facts in result.facts.items():
        assert facts.live == NodeCatalog(), name
        assert facts.pglogical_version is not None
        assert facts.wal_level == "logical"
        assert facts.filter_problems == []
        assert _filters(facts, "desired") == {
            ("approved", TECH): EXPECTED["approved"],
            ("approved", APPROACH): EXPECTED["status = 'approved'"],
        }
        # Everything else of the desired catalog is the topology's, untouched.
        raw = desired_catalogs(net.state)[name]
        assert facts.desired.subscriptions == raw.subscriptions
        assert facts.desired.node_name == name and facts.desired.dsn == raw.dsn
        tech = facts.tables[TECH]
        assert tech.exists and tech.pk_columns == ("id",) and tech.pk_types == ("uuid",)
        assert tech.columns["approved"].type == "boolean" and tech.columns["approved"].not_null
        assert tech.replica_identity == "d"
        assert facts.stats.connections == 1 and facts.stats.round_trips == 1
    assert preflight(net.state, result) == []


PROBE_FILTERS = [
    "approved",
    "approved = true",
    "status = 'approved'",
    "status IN ('approved', 'submitted') AND district <> 'x'",
    "NOT (status = 'draft') OR updated_at > '2020-01-01'",
    "lower(district) LIKE 'a%' AND title IS NOT NULL",
]


def _probe_sets_yaml() -> str:
    lines = ["replication_sets:"]
    for i, f in enumerate(PROBE_FILTERS):
        table = TECH if "approved" in f.split()[0] else APPROACH
        escaped = f.replace('"', '\\"')
        lines += [f"  f{i}:", "    tables:", f"      {table}:", f'        row_filter: "{escaped}"']
    # A table without a primary key takes the probe's other path (a plain
    # temporary copy instead of a partitioned one); pglogical accepts it in
    # an insert-only set.
    lines += ["  nokey:", "    replicate: [insert]", "    tables:", "      public.nokey:"]
    lines += ['        row_filter: "flag AND n > 0"']
    return "\n".join(lines) + "\n"


@pytest.mark.server
def test_probe_equals_pg_get_expr_of_pglogical(network: Any) -> None:
    """The probe's normal form is exactly what pglogical stores for the installed filter."""
    net = network(sets_yaml=_probe_sets_yaml())
    node = "district_a"
    net.execute(node, "CREATE TABLE public.nokey (flag boolean NOT NULL, n numeric(8, 2))")
    net.execute(
        node,
        "SELECT pglogical.create_node(node_name := %s, dsn := %s)",
        (node, net.state.nodes[node].dsn),
    )
    for set_name, decl in sorted(net.state.replication_sets.items()):
        ops = {op.value for op in decl.replicate}
        net.execute(
            node,
            "SELECT pglogical.create_replication_set(%s, %s, %s, %s, false)",
            (set_name, "insert" in ops, "update" in ops, "delete" in ops),
        )
        for table, tdecl in decl.tables.items():
            net.execute(
                node,
                "SELECT pglogical.replication_set_add_table(%s, %s::regclass, false, NULL, %s)",
                (set_name, table, installed_filter(tdecl.row_filter, "pglogical")),
            )
    facts = inspect_network(net.state, nodes=[node]).facts[node]
    assert facts.filter_problems == []
    live, desired = _filters(facts, "live"), _filters(facts, "desired")
    assert len(live) == len(PROBE_FILTERS) + 1
    assert live == desired
    assert live[("nokey", "public.nokey")] == "((flag AND (n > (0)::numeric)) IS NOT FALSE)"
    assert live[("f0", TECH)] == EXPECTED["approved"]
    assert live[("f2", APPROACH)] == EXPECTED["status = 'approved'"]
    # And nothing of it is in sync by accident: the raw installed text differs.
    raw = desired_catalogs(net.state)[node]
    assert raw.sets["f2"].tables[APPROACH].row_filter != live[("f2", APPROACH)]


@pytest.mark.server
def test_hand_made_objects_are_read_exactly(network: Any) -> None:
    net = network()
    dsn = {n: net.state.nodes[n].dsn for n in net.state.nodes}
    for node in ("district_a", "region_east"):
        net.execute(node, "SELECT pglogical.create_node(%s, %s)", (node, dsn[node]))
    a = "district_a"
    net.execute(a, "SELECT pglogical.create_replication_set('approved', true, true, true, false)")
    net.execute(a, "SELECT pglogical.create_replication_set('extra', true, false, true, true)")
    net.execute(
        a,
        "SELECT pglogical.replication_set_add_table('approved', 'public.approach', false, "
        "ARRAY['title', 'id', 'status'], '(status = ''approved'') IS NOT FALSE')",
    )
    net.execute(a, "SELECT pglogical.replication_set_add_table('approved', 'public.technology')")
    # pglogical's own sets are never drift: a table in `default` is ignored.
    net.execute(a, "SELECT pglogical.replication_set_add_table('default', 'public.technology')")
    net.execute(
        a,
        "SELECT pglogical.replication_set_add_table('extra', 'public.technology', false, NULL, 'approved')",
    )
    r = "region_east"
    net.execute(
        r,
        "SELECT pglogical.create_subscription(subscription_name := 'by_hand', "
        "provider_dsn := %s, replication_sets := ARRAY['approved', 'extra'], "
        "synchronize_structure := false, synchronize_data := false, forward_origins := '{}')",
        (dsn[a],),
    )
    try:
        net.execute(r, "SELECT pglogical.alter_subscription_disable('by_hand', true)")
        result = inspect_network(net.state, nodes=[a, r, "nation"])
        assert result.unreachable == {}
        slot = result.facts[r].state.subscriptions["by_hand"].slot
        # by_hand is not declared: its slot on the provider, once the apply
        # worker has made it, is an orphan.
        assert set(result.facts[a].live.orphan_slots) <= {slot}
        assert result.facts[a].live.model_copy(update={"orphan_slots": ()}) == NodeCatalog(
            node_name=a,
            dsn=dsn[a],
            sets={
                "approved": ReplicationSet(
                    name="approved",
                    tables={
                        APPROACH: SetTable(
                            row_filter="((status = 'approved'::text) IS NOT FALSE)",
                            columns=("id", "status", "title"),
                        ),
                        TECH: SetTable(),
                    },
                ),
                "extra": ReplicationSet(
                    name="extra",
                    replicate_update=False,
                    replicate_truncate=True,
                    tables={TECH: SetTable(row_filter="approved")},
                ),
            },
        )
        region = result.facts[r]
        assert region.live.node_name == r and region.live.sets == {}
        assert region.live.subscriptions == {
            "by_hand": Subscription(
                name="by_hand",
                provider_node=a,
                provider_dsn=dsn[a],
                replication_sets=("approved", "extra"),
                forward_origins=(),
                enabled=False,
            )
        }
        assert slot.startswith("pgl_") and slot.endswith("by_hand")
        assert result.facts["nation"].live == NodeCatalog()
    finally:
        net.execute(r, "SELECT pglogical.drop_subscription('by_hand')")


@pytest.mark.server
def test_orphan_slots_are_those_no_declared_subscription_expects(network: Any) -> None:
    net = network()
    a = "district_a"
    db = net.execute("region_east", "SELECT current_database()")[0][0]
    [(expected,)] = net.execute(
        a,
        "SELECT pglogical.pglogical_gen_slot_name(%s, %s, %s)::text",
        (db, a, "region_east_from_district_a"),
    )
    slots = [expected, f"{expected}_0a1b2c3d", "pgl_leftover_from_old_region"]
    for slot in slots:
        net.execute(a, "SELECT pg_create_logical_replication_slot(%s, 'pglogical_output')", (slot,))
    try:
        result = inspect_network(net.state, nodes=[a, "district_b"])
        assert result.facts[a].live.orphan_slots == ("pgl_leftover_from_old_region",)
        # Slots are per database: district_b (same server) sees none of them.
        assert result.facts["district_b"].live.orphan_slots == ()
        # status reads the same slots by the same rule (inspect/slots.py): the
        # table sync's slot serves the edge, the leftover serves none.
        reading = read_node(net.state, a, timeout=10)
        served = {s.slot: s.subscription for s in reading.slots if s.slot in slots}
        assert served == {
            expected: "region_east_from_district_a",
            f"{expected}_0a1b2c3d": "region_east_from_district_a",
            "pgl_leftover_from_old_region": None,
        }
    finally:
        for slot in slots:
            net.execute(a, "SELECT pg_drop_replication_slot(%s)", (slot,))


@pytest.mark.server
def test_bad_filters_become_problems_and_the_rest_is_read(network: Any) -> None:
    sets_yaml = """\
replication_sets:
  approved:
    tables:
      public.technology:
        row_filter: "aproved"
      public.approach:
        row_filter: "title"
      public.missing:
        row_filter: "approved"
  good:
    tables:
      public.technology:
        row_filter: "approved"
"""
    net = network(sets_yaml=sets_yaml)
    facts = inspect_network(net.state, nodes=["nation"]).facts["nation"]
    assert facts.filter_problems == [
        "public.approach: argument of IS NOT FALSE must be type boolean, not type text",
        'public.missing: relation "public.missing" does not exist',
        'public.technology: column "aproved" does not exist',
    ]
    assert _filters(facts, "desired") == {
        # As installed (written out again by the tool): could not be normalised.
        ("approved", TECH): '("aproved" IS NOT FALSE)',
        ("approved", APPROACH): '("title" IS NOT FALSE)',
        ("approved", "public.missing"): '("approved" IS NOT FALSE)',
        ("good", TECH): EXPECTED["approved"],
    }
    assert not facts.tables["public.missing"].exists
    blockers = {(b.table, b.message) for b in preflight(net.state, inspect_network(net.state))}
    assert (TECH, 'row filter: column "aproved" does not exist') in blockers
    assert ("public.missing", "table does not exist") in blockers


@pytest.mark.server
def test_database_without_pglogical_is_inspected(network: Any) -> None:
    net = network()
    net.execute("nation", "DROP EXTENSION pglogical")
    result = inspect_network(net.state, nodes=["nation"])
    facts = result.facts["nation"]
    assert facts.pglogical_version is None
    assert facts.live == NodeCatalog()
    assert facts.stats.round_trips == 1
    # Normalisation needs no pglogical.
    assert _filters(facts, "desired")[("approved", TECH)] == EXPECTED["approved"]
    messages = [b.message for b in preflight(net.state, result) if b.node == "nation"]
    assert messages == ["pglogical extension is not installed in this database"]


def _traced(net: Any, node: str, cache: FilterCache) -> tuple[Any, list[str], str]:
    """Inspect one node with libpq's protocol trace: facts, messages the client sent, the trace text."""
    with tempfile.TemporaryFile(mode="w+") as trace:
        facts = inspect_node(
            net.state, node, desired_catalogs(net.state)[node], 10.0, cache=cache, trace_fd=trace.fileno()
        )
        # libpq writes the trace through a C stdio stream that untrace does
        # not flush: flush every C stream before reading the file.
        ctypes.CDLL(None).fflush(None)
        trace.seek(0)
        text = trace.read()
    # libpq trace: "<timestamp>\t<F|B>\t<length>\t<message type>...", one per message
    # (a Parse of a multi-line statement continues on further lines).
    sent = [kind for direction, kind in TRACE_LINE.findall(text) if direction == "F"]
    return facts, sent, text


@pytest.mark.server
def test_exactly_one_round_trip_on_the_wire(network: Any, filter_cache_dir: Any) -> None:
    """libpq's protocol trace shows a single Sync and no simple Query after connecting.

    The first inspection normalises the filters in that round trip (the
    probe); the next one uses the answers remembered in the cache file and
    sends no probe at all, still in one round trip.
    """
    net = network()
    node = "region_east"
    cold, sent, text = _traced(net, node, FilterCache.default())
    assert "Parse" in sent and "Execute" in sent  # the trace did capture the batch
    assert sent.count("Sync") == 1 and "Query" not in sent
    assert "reconcile_probe" in text  # the probe went with the batch
    assert cold.stats.round_trips == 1 and cold.stats.connections == 1
    assert cold.database == net.execute(node, "SELECT current_database()")[0][0]

    inspect_network(net.state, nodes=[node])  # remembers the answers in the cache file
    assert (filter_cache_dir / FILE_NAME).exists()
    warm, sent, text = _traced(net, node, FilterCache.default())
    assert sent.count("Sync") == 1 and "Query" not in sent
    assert "reconcile_probe" not in text  # nothing left to normalise
    assert warm.stats.round_trips == 1
    assert warm.desired == cold.desired and warm.filter_problems == []


@pytest.mark.server
def test_remembered_filter_is_normalised_again_when_the_table_changes(network: Any) -> None:
    """A column that changes type makes the remembered answer stale: a second round trip normalises again."""
    net = network()
    node = "nation"
    first = inspect_network(net.state, nodes=[node]).facts[node]
    assert _filters(first, "desired")[("approved", APPROACH)] == EXPECTED["status = 'approved'"]
    # The filter's column changes type: PostgreSQL now reads the same text differently.
    net.execute(node, "ALTER TABLE public.approach ALTER COLUMN status TYPE varchar(20)")
    facts, sent, _ = _traced(net, node, FilterCache.default())
    assert facts.stats.round_trips == 2 and sent.count("Sync") == 2
    assert _filters(facts, "desired")[("approved", APPROACH)] == (
        "(((status)::text = 'approved'::text) IS NOT FALSE)"
    )
    # Remembered again under the new signature: back to one round trip.
    inspect_network(net.state, nodes=[node])
    again = inspect_network(net.state, nodes=[node]).facts[node]
    assert again.stats.round_trips == 1 and again.desired == facts.desired


@pytest.mark.server
def test_filter_cache_off_damaged_or_unwritable_changes_nothing(
    network: Any, filter_cache_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = network()
    node = "district_a"
    reference = inspect_network(net.state, nodes=[node]).facts[node]
    (filter_cache_dir / FILE_NAME).write_text("{not json")
    damaged = inspect_network(net.state, nodes=[node]).facts[node]
    assert damaged.desired == reference.desired and damaged.stats.round_trips == 1
    monkeypatch.setenv("RECONCILE_CACHE_DIR", "")  # off
    off = inspect_network(net.state, nodes=[node]).facts[node]
    assert off.desired == reference.desired
    blocked = filter_cache_dir / "file-in-the-way"
    blocked.write_text("")
    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(blocked / "sub"))  # cannot be created
    unwritable = inspect_network(net.state, nodes=[node]).facts[node]
    assert unwritable.desired == reference.desired


def _with_dsn(state: DesiredState, node: str, dsn: str) -> DesiredState:
    nodes = dict(state.nodes)
    nodes[node] = nodes[node].model_copy(update={"dsn": dsn, "admin_dsn": None})
    return state.model_copy(update={"nodes": nodes})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.server
def test_unreachable_nodes_reported_quickly_others_read(
    network: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "pgpassword-must-not-leak")
    net = network()
    refused = f"host=127.0.0.1 port={_closed_port()} dbname=x user=postgres"
    no_role = net.state.nodes["district_b"].dsn + " user=no_such_role_here"
    state = _with_dsn(_with_dsn(net.state, "district_a", refused), "district_b", no_role)
    started = time.monotonic()
    result = inspect_network(state, timeout=5)
    assert time.monotonic() - started < 5
    assert sorted(result.unreachable) == ["district_a", "district_b"]
    assert "refused" in result.unreachable["district_a"].lower()
    assert "no_such_role_here" in result.unreachable["district_b"]
    assert sorted(result.facts) == sorted(set(state.nodes) - {"district_a", "district_b"})
    dump = result.model_dump_json()
    assert "pgpassword-must-not-leak" not in dump
    assert os.environ["PGPASSWORD"] not in " ".join(result.unreachable.values())


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                accepted.append(conn)
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.server
def test_silent_node_times_out_without_holding_the_others(network: Any, silent_server: int) -> None:
    net = network()
    silent = f"host=127.0.0.1 port={silent_server} dbname=x user=postgres"
    state = _with_dsn(net.state, "nation", silent)
    started = time.monotonic()
    result = inspect_network(state, timeout=2)
    elapsed = time.monotonic() - started
    assert list(result.unreachable) == ["nation"]
    assert "timeout" in result.unreachable["nation"].lower()
    assert elapsed < 8
    assert len(result.facts) == len(state.nodes) - 1


@pytest.mark.server
def test_fingerprint_tracks_live_state_only(network: Any) -> None:
    net = network()
    node = "district_c"
    first = inspect_network(net.state, nodes=[node]).facts[node]
    again = inspect_network(net.state, nodes=[node]).facts[node]
    assert first.fingerprint == again.fingerprint
    net.execute(node, "SELECT pglogical.create_node(%s, %s)", (node, net.state.nodes[node].dsn))
    changed = inspect_network(net.state, nodes=[node]).facts[node]
    assert changed.fingerprint != first.fingerprint


@pytest.mark.server
def test_rows_are_read_only_where_a_subscription_will_be_created(network: Any) -> None:
    """has_rows decides a new subscription's COPY; it is read only where one is missing."""
    net = network(parents={"nation": None, "region": "nation", "d1": "region"})
    net.execute(
        "d1",
        "INSERT INTO public.technology (id, title, district, approved)"
        " VALUES (gen_random_uuid(), 't', 'd1', true)",
    )
    # Without pglogical a database is always asked (any subscription there is new).
    net.execute("d1", "DROP EXTENSION pglogical")
    bare = inspect_network(net.state, nodes=["d1"]).facts["d1"]
    assert bare.tables[TECH].has_rows is True and bare.tables[APPROACH].has_rows is False
    net.execute("d1", "CREATE EXTENSION pglogical")
    fresh = inspect_network(net.state).facts
    # region and nation hold a declared subscription that does not exist yet: read.
    assert {t.has_rows for t in fresh["region"].tables.values()} == {False}
    assert {t.has_rows for t in fresh["nation"].tables.values()} == {False}
    # d1 subscribes to nothing: not read, although it holds a row.
    assert {t.has_rows for t in fresh["d1"].tables.values()} == {None}
    plan = cli("plan", "-d", str(net.dir), "--format", "json")
    creates = [a for a in json.loads(plan.output)["actions"] if a["kind"] == "create_subscription"]
    assert len(creates) == 2 and all(a["copy_data"] for a in creates)  # empty subscribers: copy
    assert cli("apply", "-d", str(net.dir), "--auto-approve").exit_code == 0
    settled = inspect_network(net.state).facts
    assert {t.has_rows for f in settled.values() for t in f.tables.values()} == {None}


@pytest.mark.server
def test_a_table_named_like_a_keyword_is_read_by_its_declared_name(network: Any) -> None:
    """Live set tables are named as declared (app.order), never quoted (app."order")."""
    schema = DEFAULT_SCHEMA.read_text() + (
        '\nCREATE SCHEMA app;\nCREATE TABLE app."order" (id uuid PRIMARY KEY, placed boolean NOT NULL DEFAULT false);\n'
    )
    sets_yaml = """\
replication_sets:
  approved:
    replicate: [insert, update, delete]
    tables:
      app.order:
        row_filter: "placed"
"""
    net = network(parents={"nation": None, "d1": "nation"}, sets_yaml=sets_yaml, schema_sql=schema)
    assert cli("apply", "-d", str(net.dir), "--auto-approve").exit_code == 0
    facts = inspect_network(net.state, nodes=["d1"]).facts["d1"]
    assert list(facts.live.sets["approved"].tables) == ["app.order"]
    again = cli("plan", "-d", str(net.dir), "--detailed-exitcode")
    assert again.exit_code == 0, again.output


@pytest.mark.server
def test_a_database_search_path_does_not_reach_the_session(network: Any) -> None:
    """The session's search_path is pinned (db.PINNED): a database's own one changes no normal form.

    (The signature of a remembered normal form still holds the session's
    search_path, as a second line of defence.)
    """
    net = network(parents={"nation": None})
    node = "nation"
    first = inspect_network(net.state, nodes=[node]).facts[node]
    database = net.execute(node, "SELECT current_database()")[0][0]
    net.execute(node, "CREATE SCHEMA extra")
    net.execute(node, f'ALTER DATABASE "{database}" SET search_path = "$user", public, extra')
    again = inspect_network(net.state, nodes=[node]).facts[node]
    assert again.stats.round_trips == 1 and again.filter_problems == []
    assert again.desired == first.desired


@pytest.mark.server
def test_a_filter_calling_a_user_function_never_reaches_the_node(network: Any) -> None:
    """A user function can be replaced by anything: refused, and for a state that skipped the loader, never sent."""
    net = network(parents={"nation": None})
    node = "nation"
    net.execute(
        node,
        "CREATE FUNCTION public.is_public(d text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT d IS NOT NULL'",
    )
    approved = net.state.replication_sets["approved"]
    tables = {**approved.tables, TECH: approved.tables[TECH].model_copy(update={"row_filter": "is_public(district)"})}
    sets = {**net.state.replication_sets, "approved": approved.model_copy(update={"tables": tables})}
    state = net.state.model_copy(update={"replication_sets": sets})
    facts, _, text = _traced(SimpleNamespace(state=state), node, FilterCache(None))
    assert facts.filter_problems == [
        "public.technology: row_filter calls is_public(): only these built-in functions are allowed: "
        f"{FUNCTION_LIST}; {WHY}"
    ]
    assert "is_public" not in text  # not in the probe, not anywhere on the wire
    assert facts.desired.sets["approved"].tables[APPROACH].row_filter == EXPECTED["status = 'approved'"]


@pytest.mark.server
def test_a_materialized_view_named_like_a_declared_table_is_a_missing_table(network: Any) -> None:
    """Rows are only ever counted in tables: a matview of that name is reported, never queried."""
    schema = (
        DEFAULT_SCHEMA.read_text()
        + "\nCREATE MATERIALIZED VIEW public.summary AS SELECT 1 AS n WITH NO DATA;\n"
    )
    sets_yaml = """\
replication_sets:
  approved:
    tables:
      public.technology:
        row_filter: "approved"
      public.summary: {}
"""
    net = network(parents={"nation": None, "d1": "nation"}, sets_yaml=sets_yaml, schema_sql=schema)
    result = inspect_network(net.state, nodes=["nation"])  # nation's subscription is missing: rows are asked
    assert result.unreachable == {}
    facts = result.facts["nation"]
    assert not facts.tables["public.summary"].exists
    assert facts.tables[TECH].has_rows is False
    assert ("public.summary", "table does not exist") in {
        (b.table, b.message) for b in preflight(net.state, result)
    }


def test_one_slot_rule_for_edges_table_syncs_and_orphans() -> None:
    expected = {"pgl_db_a_sub": "sub"}
    assert serves("pgl_db_a_sub", expected) == "sub"
    assert serves("pgl_db_a_sub_0a1b2c3d", expected) == "sub"  # pglogical table sync
    assert serves("pgl_db_a_sub_0A1B2C3D", expected) is None  # pglogical prints lower-case hex
    assert serves("pgl_db_a_sub_0a1b2c3", expected) is None
    assert serves("pgl_db_a_other_0a1b2c3d", expected) is None
    assert is_native_table_sync("pg_16400_sync_16390_7300000000000000000")
    assert not is_native_table_sync("pg_16400_sync_16390_")
    slots = ["pgl_db_a_sub_0a1b2c3d", "pg_16400_sync_16390_7300000000000000000", "stray", "pgl_db_a_sub"]
    assert orphans(slots, expected) == ["stray"]


@pytest.mark.server
def test_a_locked_table_ends_inspection_at_its_timeout(network: Any, filter_cache_dir: Any) -> None:
    """The timeouts come with db.connect: a probe never queues behind ACCESS EXCLUSIVE for long."""
    net = network()
    node = "region_east"
    holder = psycopg.connect(net.dsn(node))  # not autocommit: the lock stays until rollback
    try:
        holder.execute("LOCK TABLE public.technology IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        result = inspect_network(net.state, nodes=[node], timeout=2)
        assert time.monotonic() - started < 15
        assert node in result.unreachable and "timeout" in result.unreachable[node]
    finally:
        holder.rollback()
        holder.close()
    assert node in inspect_network(net.state, nodes=[node], timeout=5).facts
