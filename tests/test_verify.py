"""verify: the range-hash descent (pure, against brute force), targets, rendering, and live edge cases on real servers."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql
from typer.testing import CliRunner, Result

from reconciler.cli import app
from reconciler.cli.exit_codes import for_verify as exit_code
from reconciler.load import load_desired_state
from reconciler.render.verify import render_verify_json, render_verify_text
from reconciler.verify.compare import Outcome, compare, diff_rows
from reconciler.verify.node import NodeSession, TableSide, passes
from reconciler.verify.ranges import EMPTY, Probe, Summary, bounds, child_digits, key_hex, text_width
from reconciler.verify.repair import repair, upsert_statement
from reconciler.verify.run import Status, TableReport, VerifyReport
from reconciler.verify.targets import TargetError, subscriber_checks

EXAMPLE = Path(__file__).resolve().parent.parent / "desired-state"
SMALL = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}


# --------------------------------------------------------------------------
# Pure: ranges and the descent
# --------------------------------------------------------------------------


def test_prefix_bounds_and_text_width() -> None:
    assert bounds("") == ("00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff")
    assert bounds("ab12345678") == (
        "ab123456-7800-0000-0000-000000000000",
        "ab123456-78ff-ffff-ffff-ffffffffffff",
    )
    text = "0123abcd-4567-89ab-cdef-0123456789ab"
    for depth in range(33):
        assert text[: text_width(depth)].replace("-", "") == key_hex(text)[:depth]


def test_child_digits_splits_into_buckets_of_the_target_size() -> None:
    assert child_digits(100, 256) == 1
    assert child_digits(20_000, 256) == 2
    assert child_digits(1_000_000, 256) == 3
    assert child_digits(10**9, 256) == 3  # capped: one answer stays small


class MemorySide:
    """A side holding rows in memory; counts what it was asked."""

    def __init__(self, rows: dict[str, str]) -> None:
        self.data = rows
        self.rows_asked = 0

    def summaries(self, probes: Sequence[Probe]) -> dict[str, Summary]:
        out: dict[str, Summary] = {}
        for probe in probes:
            for key, h in self.data.items():
                hx = key_hex(key)
                if hx.startswith(probe.prefix):
                    bucket = hx[: probe.depth]
                    # Like md5(ROW(...)::text) in SQL: the key is part of the hashed row
                    # text, so two rows never share a hash and XOR cannot cancel them.
                    digest = hashlib.md5(f"{key}|{h}".encode()).hexdigest()
                    out[bucket] = out.get(bucket, EMPTY) + Summary(1, int(digest[:16], 16))
        return out

    def rows(self, prefixes: Sequence[str]) -> dict[str, str]:
        self.rows_asked += 1
        return {k: h for k, h in self.data.items() if any(key_hex(k).startswith(p) for p in prefixes)}


# Keys cluster around a few bases so that ranges must be split deep.
keys = st.builds(
    lambda base, low: str(uuid.UUID(int=(base << 16) | low)),
    st.sampled_from([0, 0xABCDEF << 80, (1 << 112) - 1]),
    st.integers(0, 0xFFFF),
)
hashes = st.sampled_from(["0123456789abcdef", "fedcba9876543210", "00000000000000ff"])


@settings(max_examples=150, deadline=None)
@given(
    providers=st.lists(st.dictionaries(keys, hashes, max_size=40), min_size=1, max_size=3),
    extra=st.dictionaries(keys, hashes, max_size=10),
    drop=st.sets(keys, max_size=10),
    data=st.data(),
)
def test_descent_finds_exactly_what_brute_force_finds(
    providers: list[dict[str, str]], extra: dict[str, str], drop: set[str], data: st.DataObject
) -> None:
    # UUID keys: a key lives at one provider only.
    seen: set[str] = set()
    passing: dict[str, dict[str, str]] = {}
    for i, rows in enumerate(providers):
        passing[f"p{i}"] = {k: h for k, h in rows.items() if k not in seen}
        seen |= set(rows)
    held = {k: h for rows in passing.values() for k, h in rows.items() if k not in drop}
    for key in data.draw(st.lists(st.sampled_from(sorted(held)), max_size=5)) if held else []:
        held[key] = "1111111111111111"  # edited by hand at the subscriber
    held.update(extra)
    sides = {name: MemorySide(rows) for name, rows in passing.items()}
    got = compare(MemorySide(held), sides, leaf_rows=2, bucket_rows=2)
    want = diff_rows(held, passing)
    assert (got.missing, got.differing, got.stale) == (want.missing, want.differing, want.stale)


def test_consistent_sides_never_fetch_rows() -> None:
    rows = {str(uuid.UUID(int=i * 7919 << 64)): "0123456789abcdef" for i in range(500)}
    sub, prov = MemorySide(dict(rows)), MemorySide(dict(rows))
    outcome = compare(sub, {"p": prov})
    assert outcome.consistent and outcome.rounds == 1
    assert sub.rows_asked == prov.rows_asked == 0


def test_diff_rows_attributes_missing_and_differing_to_the_edge_and_stale_to_the_subscriber() -> None:
    outcome = diff_rows(
        held={"k1": "a", "k2": "x", "k9": "z"},
        passing={"d1": {"k1": "a", "k3": "c"}, "d2": {"k2": "b"}},
    )
    assert outcome.missing == {"d1": ("k3",), "d2": ()}
    assert outcome.differing == {"d1": (), "d2": ("k2",)}
    assert outcome.stale == ("k9",)
    assert outcome.count() == (1, 1, 1)


def test_upsert_touches_only_compared_columns_and_skips_equal_rows() -> None:
    text = upsert_statement("public.approach", "id", ("id", "status", "title")).as_string(None)
    assert 'INSERT INTO "public"."approach" AS t ("id", "status", "title")' in text
    assert 'DO UPDATE SET "status" = EXCLUDED."status", "title" = EXCLUDED."title"' in text
    assert 'IS DISTINCT FROM ROW("excluded"."status", "excluded"."title")' in text
    assert "DO NOTHING" in upsert_statement("public.k", "id", ("id",)).as_string(None)


# --------------------------------------------------------------------------
# Pure: what is compared, rendering, exit codes
# --------------------------------------------------------------------------


def test_targets_of_the_example_network() -> None:
    state = load_desired_state(EXAMPLE)
    checks = subscriber_checks(state)
    assert [(c.subscriber, c.providers) for c in checks] == [
        ("region_east", ("district_a", "district_b")),
        ("region_west", ("district_c", "district_d")),
        ("nation", ("region_east", "region_west")),
    ]
    approach = next(t for t in checks[0].tables if t.table == "public.approach")
    assert approach.row_filter == """("status" = 'approved')"""  # as the tool writes it out again
    assert approach.columns == ("district", "id", "status", "title", "updated_at")
    # A district selects the region it feeds; a region selects itself and the nation.
    assert [c.subscriber for c in subscriber_checks(state, nodes=["district_c"])] == ["region_west"]
    assert [c.subscriber for c in subscriber_checks(state, nodes=["region_east"])] == [
        "region_east",
        "nation",
    ]
    only = subscriber_checks(state, tables=["technology"])
    assert {t.table for c in only for t in c.tables} == {"public.technology"}
    with pytest.raises(TargetError, match="not a declared table"):
        subscriber_checks(state, tables=["public.nope"])
    with pytest.raises(TargetError, match="not a declared node"):
        subscriber_checks(state, nodes=["atlantis"])


def _report(*tables: TableReport, unreachable: dict[str, str] | None = None) -> VerifyReport:
    return VerifyReport(tables=list(tables), unreachable=unreachable or {}, bytes_read={"a": 10, "b": 20})


def test_exit_codes_and_renders() -> None:
    diff = Outcome(missing={"d1": ("k1",)}, differing={"d1": ()}, stale=("k2", "k3"))
    same = Outcome(missing={"d1": ()}, differing={"d1": ()})
    found = TableReport("region", "public.t", ("d1",), Status.DIFFERENCES, found=diff)
    ok = TableReport("region", "public.u", ("d1",), Status.CONSISTENT, found=same)
    undecided = TableReport("nation", "public.t", ("region",), Status.UNDECIDED, reason="unreachable: region")
    error = TableReport(
        "nation", "public.u", ("region",), Status.ERROR, reason="table public.u does not exist"
    )
    assert exit_code(_report(ok)) == 0
    assert exit_code(_report(ok, found)) == 2
    assert exit_code(_report(found, undecided, unreachable={"region": "refused"})) == 3
    assert exit_code(_report(found, undecided, error)) == 1
    text = render_verify_text(_report(found, ok))
    assert "  region <- d1  public.t: 1 missing, 0 differing\n      missing:   k1\n" in text
    assert "  region  public.t: 2 stale\n      stale:     k2, k3\n" in text
    assert "Verify: 1 missing, 0 differing, 2 stale in 2 table(s); 0 undecided, 0 error(s)." in text
    assert "Bytes read: a 10, b 20 (total 30)." in text
    both = _report(found, undecided)
    document = json.loads(render_verify_json(both, exit_code(both)))
    assert document["version"] == 1 and document["exit_code"] == 3
    assert document["tables"][0]["found"]["stale"] == {"count": 2, "sample": ["k2", "k3"]}
    assert document["tables"][1]["found"] is None and document["tables"][1]["status"] == "undecided"
    assert render_verify_json(_report(found), 2) == render_verify_json(_report(found), 2)


# --------------------------------------------------------------------------
# Live: no replication needed, verify only reads tables
# --------------------------------------------------------------------------


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def tech(net: Any, node: str, approved: bool, key: str | None = None, title: str = "t") -> str:
    key = key or str(uuid.uuid4())
    net.execute(
        node,
        "INSERT INTO public.technology (id, title, district, approved, updated_at)"
        " VALUES (%s, %s, 'd', %s, '2024-01-01 00:00:00+00')",
        (key, title, approved),
    )
    return key


@pytest.mark.server
def test_live_differences_repair_and_unreachable_provider(network: Any, tmp_path: Path) -> None:
    net = network(parents=SMALL)
    both = tech(net, "d1", True)
    tech(net, "region", True, key=both)
    missing = tech(net, "d1", True)
    tech(net, "d1", False)  # a draft: belongs nowhere upstream
    edited = tech(net, "d2", True)
    tech(net, "region", True, key=edited, title="changed by hand")
    stale = tech(net, "region", True)
    result = cli("verify", "-d", str(net.dir), "--table", "technology")
    assert result.exit_code == 2, result.output
    assert (
        f"region <- d1  public.technology: 1 missing, 0 differing\n      missing:   {missing}"
        in result.stdout
    )
    assert (
        f"region <- d2  public.technology: 0 missing, 1 differing\n      differing: {edited}" in result.stdout
    )
    assert f"region  public.technology: 1 stale\n      stale:     {stale}" in result.stdout
    # Plain verify reads only: its sessions are read-only.
    assert net.execute("region", "SELECT count(*) FROM public.technology") == [(3,)]

    # A provider that does not answer: nothing about that subscriber is guessed.
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in net.dir.glob("*.yaml"):
        (broken / f.name).write_text(
            f.read_text().replace(net.dsn("d2"), "host=127.0.0.1 port=1 dbname=x user=postgres")
        )
    down = cli("verify", "-d", str(broken), "--table", "technology", "--format", "json", "--timeout", "2")
    assert down.exit_code == 3, down.output
    document = json.loads(down.stdout)
    region = next(t for t in document["tables"] if t["subscriber"] == "region")
    assert region["status"] == "undecided" and region["found"] is None
    assert region["reason"] == "unreachable: d2"
    assert "d2" in document["unreachable"] and "d2" not in document["bytes_read"]

    fixed = cli("verify", "-d", str(net.dir), "--table", "technology", "--repair")
    assert fixed.exit_code == 0, fixed.output
    assert "repaired region: 1 inserted, 1 updated, 1 deleted; now consistent" in fixed.stdout
    assert cli("verify", "-d", str(net.dir)).exit_code == 0


@pytest.mark.server
def test_repair_spares_a_stale_row_that_passes_again_and_errors_name_the_table(network: Any) -> None:
    net = network(parents=SMALL)
    key = tech(net, "region", True)
    tech(net, "d1", False, key=key)  # withdrawn at d1: stale at the region
    sessions = {
        n: NodeSession(n, net.dsn(n), timeout=5, statement_timeout=30, writable=True)
        for n in ("d1", "d2", "region")
    }
    columns = ("approved", "description", "district", "id", "title", "updated_at")
    mine = TableSide(sessions["region"], "public.technology", "id", columns, sql.SQL("true"))
    theirs = {
        p: TableSide(sessions[p], "public.technology", "id", columns, passes("approved"))
        for p in ("d1", "d2")
    }
    outcome = compare(mine, theirs)
    assert outcome.stale == (key,)
    # Approved again between the comparison and the repair: the row is spared.
    net.execute("d1", "UPDATE public.technology SET approved = true WHERE id = %s", (key,))
    result = repair(mine, theirs, outcome)
    assert (result.deleted, result.spared) == (0, 1)
    assert net.execute("region", "SELECT count(*) FROM public.technology") == [(1,)]
    for session in sessions.values():
        session.close()

    net.execute("d2", "DROP TABLE public.approach")
    result_cli = cli("verify", "-d", str(net.dir), "--table", "approach")
    assert result_cli.exit_code == 1, result_cli.output
    assert (
        "public.approach at region (providers: d1, d2): error (table public.approach does not exist on d2)"
        in result_cli.stdout
    )


@pytest.mark.server
def test_verify_sessions_get_their_limits_from_the_one_connect(network: Any) -> None:
    """statement_timeout and read-only come in the startup packet (db.connect), with the pinned settings."""
    net = network(parents={"nation": None})
    plain = NodeSession("nation", net.dsn("nation"), timeout=5, statement_timeout=1.5)
    writer = NodeSession("nation", net.dsn("nation"), timeout=5, statement_timeout=30, writable=True)
    try:
        shown = sql.SQL(
            "SELECT current_setting('statement_timeout'), current_setting('transaction_read_only')"
        )
        assert plain.execute(shown) == [("1500ms", "on")]
        assert writer.execute(shown) == [("30s", "off")]
        # Rows print the same on every node: the pins of db.connect hold here too.
        assert plain.execute(sql.SQL("SELECT current_setting('TimeZone')")) == [("UTC",)]
    finally:
        plain.conn.close()
        writer.conn.close()


@pytest.mark.server
def test_a_fetched_row_travels_as_values_and_is_written_back_exactly_even_when_wide(network: Any) -> None:
    """fetch.sql sends a row as a JSON array of its values (no column names), upsert.sql names them
    again; PostgreSQL takes at most 100 function arguments, so 130 columns travel in pieces."""
    from psycopg import sql as psql

    from reconciler.verify.node import values_array

    net = network(parents={"nation": None, "d1": "nation"})
    kinds = [
        "integer",
        "text",
        "boolean",
        "timestamptz",
        "numeric",
        "jsonb",
        "date",
        "uuid",
        "double precision",
    ]
    columns = ["id", *(f"c{i}" for i in range(129))]
    types = ["uuid", *(kinds[i % len(kinds)] for i in range(129))]
    defs = ", ".join(
        f"{c} {t}" + (" PRIMARY KEY" if c == "id" else "") for c, t in zip(columns, types, strict=True)
    )
    values = {
        "integer": "-7",
        "text": '$$it\'s "quoted" \\ ok$$',
        "boolean": "true",
        "timestamptz": "'2026-12-01 12:34:56.789+00'",
        "numeric": "12345678901234567890.123",
        "jsonb": '\'{"a": [1, "x"]}\'',
        "date": "'2026-02-28'",
        "uuid": "gen_random_uuid()",
        "double precision": "0.1",
    }
    net.execute("d1", f"CREATE TABLE public.wide ({defs})")
    net.execute("d1", f"CREATE TABLE public.wide_copy ({defs})")
    net.execute(
        "d1",
        f"INSERT INTO public.wide VALUES ({', '.join(values[t] for t in types)})",
    )
    net.execute("d1", "INSERT INTO public.wide (id) VALUES (gen_random_uuid())")  # NULLs travel too
    query = psql.SQL("SELECT ({})::text FROM public.wide AS t ORDER BY t.id").format(values_array(columns))
    rows = [r[0] for r in net.execute("d1", query)]
    assert all(r.startswith("[") for r in rows)
    written = net.execute(
        "d1", upsert_statement("public.wide_copy", "id", tuple(columns)), {"rows": "[" + ",".join(rows) + "]"}
    )
    assert written == [(True,), (True,)]
    same = "SELECT count(*) FROM (SELECT * FROM public.wide EXCEPT SELECT * FROM public.wide_copy) AS d"
    assert net.execute("d1", same) == [(0,)]
