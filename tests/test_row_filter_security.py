"""Row filters are untrusted input: the allow-list, the one emitter, and every place a filter reaches a server.

Pure tests of the checker and the emitter (hypothesis round trip), then real
servers: the payloads that ran COPY ... TO PROGRAM through the probe, the
engines and verify when a session had standard_conforming_strings off.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql
from ruamel.yaml import YAML
from support import cli, wait_for

from reconciler.engines import native_statements, pglogical_statements
from reconciler.filter_sql import (
    Between,
    BoolOp,
    BoolTest,
    Cast,
    Coalesce,
    Column,
    Const,
    Distinct,
    Expr,
    Func,
    InList,
    MinMax,
    Not,
    NullIf,
    NullTest,
    Op,
    columns,
    emit,
)
from reconciler.inspect.request import build_request, sql_text
from reconciler.model import SetTable
from reconciler.row_filter import (
    WHY,
    FilterRefused,
    _read,
    check_row_filter,
    filter_sql,
    regex_patterns,
)
from reconciler.topology import desired_catalogs, installed_filter
from reconciler.verify.node import passes
from reconciler.verify.targets import subscriber_checks

# --------------------------------------------------------------------------
# pure: what is refused, and why
# --------------------------------------------------------------------------

RUN_TIME = [
    ("1/(n-n) > 0", "the operator '/': arithmetic"),
    ("n + 1 > 2", "the operator '+'"),
    ("-n > 2", "the operator '-'"),
    ("title || 'x' = 'y'", "the operator '||'"),
    ("now() > updated_at", "calls now(): only these built-in functions are allowed: lower, upper"),
    ("random() > 0.5 AND approved", "calls random()"),
    ("pg_sleep(10) IS NULL AND approved", "calls pg_sleep()"),
    ("pg_read_file('/etc/passwd') = title", "calls pg_read_file()"),
    ("set_config('a.b', 'c', false) = title", "calls set_config()"),
    ("is_public(district)", "calls is_public()"),
    ("public.lower(title) = 'x'", "calls public.lower()"),
    ("pg_catalog.now() > updated_at", "calls pg_catalog.now()"),
    ("sum(n) > 1", "calls sum()"),
    ("n::int > 1", "casts to int4"),
    ("CAST(title AS integer) > 1", "casts to int4"),
    ("updated_at > date '2020-01-01'", "casts to date"),
    ("updated_at > CURRENT_DATE", "uses CURRENT_DATE: its value changes"),
    ("title = current_user", "uses CURRENT_USER"),
    ("updated_at < LOCALTIMESTAMP", "uses LOCALTIMESTAMP"),
    ("title === 'x'", "the operator '===': only the built-in operators"),
    ("title OPERATOR(public.=) 'x'", "schema-qualified operator OPERATOR(public.=)"),
    ("title OPERATOR(pg_catalog.=) 'x'", "schema-qualified operator OPERATOR(pg_catalog.=)"),
    ("tags @> '{a}'", "the operator '@>'"),
    ("title LIKE 'a\\'", "ends with a backslash that escapes nothing"),
    ("title ILIKE 'a\\\\\\'", "ends with a backslash that escapes nothing"),
    ("title LIKE district", "LIKE pattern must be a string constant"),
    ("title ~ district", "regular expression must be a string constant"),
    ("n > 1e400", "number 1e400, which is out of range"),
    ("n > 1e-50", "out of range"),
    # float('1e-400') is 0.0: the range is checked on the decimal value.
    ("f > 1e-400", "number 1e-400, which is out of range"),
    # Against a bytea column the pattern is read as bytea: one backslash byte.
    ("b LIKE '\\x5c'", "when read as a bytea value"),
    ("b LIKE '\\\\'", "when read as a bytea value"),
    ("b NOT LIKE 'a\\134'", "when read as a bytea value"),
    # Two columns in one comparison: an implicit cast or a collation at run time.
    ("amount = ratio", "compares or combines the columns amount, ratio"),
    ("c1 < c2", "the columns c1, c2"),
    ("COALESCE(d, ts) > '2020-01-01'", "the columns d, ts"),
    ("lower(a) = lower(b) OR a IS NULL", "the columns a, b"),
    ("(a = 1) = (b = 1)", "the columns a, b"),
]

REFUSED = [
    ("(SELECT true)", "must not contain a subquery"),
    ("EXISTS (SELECT 1 FROM pg_class)", "must not contain a subquery"),
    ("n IN (SELECT 1)", "must not contain a subquery"),
    ("n = $1", "must not contain parameters"),
    ("t.title = 'x'", "names the column t.title: only a plain column name"),
    ("public.t.title = 'x'", "names the column public.t.title"),
    ("title COLLATE \"C\" = 'x'", "uses COLLATE"),
    ("tags[1] = 'x'", "array subscript"),
    ("(rec).f = 'x'", "array subscript or a field selection"),
    ("title LIKE 'a' ESCAPE '!'", "LIKE ... ESCAPE"),
    ("title SIMILAR TO 'a%'", "SIMILAR TO"),
    ("n BETWEEN SYMMETRIC 2 AND 1", "BETWEEN SYMMETRIC"),
    ("n IN (1, m)", "IN list must hold only constants"),
    ("n BETWEEN m AND 2", "BETWEEN bounds must hold only constants"),
    ("n = ANY (ARRAY[1, 2])", "write IN (constants)"),
    ("ARRAY[n] = ARRAY[1]", "an ARRAY"),
    ("CASE WHEN approved THEN true END", "uses CASE"),
    ("(n, m) = (1, 2)", "a row constructor"),
    ("bits = B'101'", "bit-string constant"),
    ("n = 1_000.5", "write numbers in plain decimal"),
    ("length(title, 'UTF8') > 1", "length() with 2 arguments"),
    ("lower(title, 'x') = 'x'", "lower() with 2 arguments"),
    ("count(*) > 1", "calls count()"),
    ("true", "reads no column of the table"),
    ("1 = 1", "reads no column of the table"),
    ("'yes'", "constant that is not boolean"),
    ("t.* IS NOT NULL", "must not be '*'"),
    ("approved; DROP TABLE x", "contains ';'"),
    ("approved) OR (true", "not one valid SQL expression"),
] + [
    (f"{column} = 1", f"system column {column}")
    for column in ("ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "oid")
]

# The payload of issue 13: with standard_conforming_strings off on the node,
# `'\'` does not end the string there, and the rest ran as statements.
PAYLOAD = (
    "'\\' = $x$' = '' )) NOT VALID; COPY (SELECT current_user) TO PROGRAM 'cat > pwned.txt';"
    " ALTER TABLE pg_temp.reconcile_probe_1 ADD CONSTRAINT q CHECK ((true --$x$"
)
# A variant that completes as statements once installed as `(<f>) IS NOT FALSE`
# and spliced into the probe's CHECK: the `--` hides the rest of the DDL.
PAYLOAD_THAT_RUNS = (
    "'\\' = $x$' = '' )) NOT VALID; COPY (SELECT current_user) TO PROGRAM 'cat > pwned.txt'; SELECT 1 --$x$"
)


@pytest.mark.parametrize(("text", "words"), RUN_TIME)
def test_what_can_fail_at_run_time_is_refused_and_says_why(text: str, words: str) -> None:
    [message] = check_row_filter(text)
    assert words in message
    assert message.endswith(WHY)


@pytest.mark.parametrize(("text", "words"), REFUSED)
def test_what_is_not_a_declarative_predicate_is_refused(text: str, words: str) -> None:
    found = check_row_filter(text)
    assert len(found) == 1 and words in found[0], found
    with pytest.raises(FilterRefused, match="row_filter"):
        filter_sql(text)


def test_size_limits_hold_for_the_declared_text_and_what_the_tool_reads_again_is_bounded() -> None:
    assert check_row_filter("NOT " * 41 + "approved") == ["row_filter is nested deeper than 40 levels"]
    assert check_row_filter("approved OR " * 400) == ["row_filter is longer than 4000 characters"]
    with pytest.raises(FilterRefused, match="nested deeper than 80 levels"):
        filter_sql("NOT " * 81 + "approved")
    with pytest.raises(FilterRefused, match="nested deeper than 80 levels"):
        filter_sql("NOT " * 3000 + "approved", server_forms=True)  # was a RecursionError
    with pytest.raises(FilterRefused, match="longer than 64000 characters"):
        filter_sql("approved OR " * 6000 + "approved")


@pytest.mark.parametrize("engine", ["pglogical", "native"])
@pytest.mark.parametrize(
    "text",
    [
        "a IN (" + ",".join(["1"] * 1990) + ")",  # 3986 characters, 5979 once re-emitted
        "NOT " * 39 + "a",  # 40 levels; 41 once installed as `(<filter> IS NOT FALSE)`
        "s = '" + "\\" * 3990 + "'",  # the backslashes are doubled once re-emitted
    ],
)
def test_a_filter_validate_accepts_is_never_refused_later_for_its_size(text: str, engine: str) -> None:
    """These passed validate, then plan refused them (or raised FilterRefused) on the re-emitted text."""
    from reconciler.load import load_desired_texts

    assert len(text) <= 4000 and check_row_filter(text) == []
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    files = {
        "t.yaml": (
            f"version: 1\nengine: {engine}\nnodes:\n"
            "  up: {level: region, dsn: 'host=h1 dbname=up'}\n"
            "  down: {level: district, upstream: up, dsn: 'host=h2 dbname=down'}\n"
            "levels: [district, region]\n"
            f'replication_sets:\n  a: {{tables: {{public.t: {{row_filter: "{quoted}"}}}}}}\n'
            '  b: {tables: {public.t: {row_filter: "z"}}}\n'
        )
    }
    state = load_desired_texts(files, origin="t")
    assert state.replication_sets["a"].tables["public.t"].row_filter == text
    for node in ("up", "down"):
        request = build_request(state, node, desired_catalogs(state)[node])
        assert request.problems == ()
        assert {p.installed for p in request.probes} >= {installed_filter(text, engine)}
    [check] = subscriber_checks(state)
    assert check.tables[0].row_filter is not None
    assert passes(check.tables[0].row_filter).as_string().startswith("COALESCE((")


def test_the_payload_is_refused_and_could_only_ever_be_sent_as_constants() -> None:
    assert check_row_filter(PAYLOAD) == [
        "row_filter reads no column of the table: it does not depend on the row, so it passes every row"
        " or none; leave row_filter out to replicate every row"
    ]
    # With a column it is a valid filter, comparing with two string constants:
    # what is sent holds them as constants only, whatever the session reads.
    valid = f"title = 'x' OR {PAYLOAD}"
    assert check_row_filter(valid) == []
    assert filter_sql(valid) == (
        "((\"title\" = 'x') OR (E'\\\\' = ''' = '''' )) NOT VALID; COPY (SELECT current_user) TO PROGRAM"
        " ''cat > pwned.txt''; ALTER TABLE pg_temp.reconcile_probe_1 ADD CONSTRAINT q CHECK ((true --'))"
    )


ALLOWED = [
    ("approved", '"approved"'),
    ("approved = true", '("approved" = true)'),
    ("status = 'approved'", "(\"status\" = 'approved')"),
    ("status != 'x' AND n <> 2", '(("status" <> \'x\') AND ("n" <> 2))'),
    ("n < 1 OR n > 2 OR n <= -3 OR n >= 4.5", '(("n" < 1) OR ("n" > 2) OR ("n" <= (-3)) OR ("n" >= 4.5))'),
    ("NOT approved", '(NOT "approved")'),
    ("title IS NULL OR title IS NOT NULL", '(("title" IS NULL) OR ("title" IS NOT NULL))'),
    ("title ISNULL", '("title" IS NULL)'),
    ("approved IS TRUE", '("approved" IS TRUE)'),
    ("approved IS NOT FALSE", '("approved" IS NOT FALSE)'),
    ("approved IS UNKNOWN", '("approved" IS UNKNOWN)'),
    ("approved IS NOT UNKNOWN", '("approved" IS NOT UNKNOWN)'),
    ("a IS DISTINCT FROM 'b'", "(\"a\" IS DISTINCT FROM 'b')"),
    ("a IS NOT DISTINCT FROM NULL", '("a" IS NOT DISTINCT FROM NULL)'),
    ("status IN ('a', 'b')", "(\"status\" IN ('a', 'b'))"),
    ("n NOT IN (1, 2.5, NULL)", '("n" NOT IN (1, 2.5, NULL))'),
    ("n BETWEEN 1 AND 5", '("n" BETWEEN 1 AND 5)'),
    ("n NOT BETWEEN -5 AND 5", '("n" NOT BETWEEN (-5) AND 5)'),
    ("title LIKE 'a%'", "(\"title\" LIKE 'a%')"),
    ("title NOT LIKE 'a\\%'", "(\"title\" NOT LIKE E'a\\\\%')"),
    ("title ILIKE 'a\\\\'", "(\"title\" ILIKE E'a\\\\\\\\')"),
    ("title NOT ILIKE '%b'", "(\"title\" NOT ILIKE '%b')"),
    (
        "title ~ '^a' AND title ~* 'b' AND title !~ 'c' AND title !~* 'd'",
        "((\"title\" ~ '^a') AND (\"title\" ~* 'b') AND (\"title\" !~ 'c') AND (\"title\" !~* 'd'))",
    ),
    (
        "lower(title) = 'a' AND upper(title) = 'A'",
        "((pg_catalog.lower(\"title\") = 'a') AND (pg_catalog.upper(\"title\") = 'A'))",
    ),
    ("pg_catalog.length(title) > 3", '(pg_catalog.length("title") > 3)'),
    ("char_length(title) > 3", '(pg_catalog.char_length("title") > 3)'),
    (
        "btrim(title) = '' OR ltrim(title, 'x') = '' OR rtrim(title) = ''",
        "((pg_catalog.btrim(\"title\") = '') OR (pg_catalog.ltrim(\"title\", 'x') = '') OR (pg_catalog.rtrim(\"title\") = ''))",
    ),
    ("TRIM(BOTH 'x' FROM title) = 'a'", "(pg_catalog.btrim(\"title\", 'x') = 'a')"),
    ("COALESCE(approved, false)", 'COALESCE("approved", false)'),
    ("NULLIF(status, 'x') IS NULL", "(NULLIF(\"status\", 'x') IS NULL)"),
    ("GREATEST(n, 1) > 2 OR LEAST(m, 2) < 1", '((GREATEST("n", 1) > 2) OR (LEAST("m", 2) < 1))'),
    ('"Weird ""name""" = 1', '("Weird ""name""" = 1)'),
    ("title = $$it's$$", "(\"title\" = 'it''s')"),
    ("title = E'a\\nb'", "(\"title\" = 'a\nb')"),
    ("title = U&'d\\0061t'", "(\"title\" = 'dat')"),
    ("n = 0x1F", '("n" = 31)'),
    ("n > 1e10 AND n < .5e3", '(("n" > 1e10) AND ("n" < .5e3))'),
]


@pytest.mark.parametrize(("text", "sent"), ALLOWED)
def test_allowed_filters_and_the_text_sent_for_them(text: str, sent: str) -> None:
    assert check_row_filter(text) == []
    assert filter_sql(text) == sent
    assert filter_sql(sent) == sent  # a fixed point


def test_regular_expressions_are_handed_to_the_probe() -> None:
    assert regex_patterns("title ~ '(' OR title !~* 'b' OR title ~ '(' OR title LIKE 'c'") == (
        ("(", False),
        ("b", True),
    )


def test_verify_joins_the_filters_it_sends() -> None:
    from reconciler.load import load_desired_texts

    files = {
        "t.yaml": (
            "version: 1\nnodes:\n"
            "  up: {level: region, dsn: 'host=h1 dbname=up'}\n"
            "  down: {level: district, upstream: up, dsn: 'host=h2 dbname=down'}\n"
            "levels: [district, region]\n"
            "replication_sets:\n"
            "  a: {tables: {public.t: {row_filter: \"x = 'a' OR y\"}}}\n"
            '  b: {tables: {public.t: {row_filter: "z"}}}\n'
        )
    }
    [check] = subscriber_checks(load_desired_texts(files, origin="t"))
    [table] = check.tables
    assert table.row_filter == '((("x" = \'a\') OR "y") AND "z")'
    assert passes(table.row_filter).as_string() == "COALESCE(" + table.row_filter + ", false)"


# --------------------------------------------------------------------------
# pure: the emitter round trip
# --------------------------------------------------------------------------

names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12
)
column_names = names.filter(lambda n: n not in {"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "oid"})
strings = st.lists(
    st.one_of(
        st.sampled_from(["\\", "'", "$", "x", "$x$", "--", "/*", ";", '"', "E'", "\n", " "]),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    ),
    max_size=12,
).map("".join)
numbers = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{whole}{frac}{exp}",
    st.sampled_from(["", "-"]),
    st.integers(0, 10**6).map(str),
    st.sampled_from(["", "."]).flatmap(
        lambda d: st.just(d) if not d else st.integers(0, 999).map(lambda f: f".{f}")
    ),
    st.sampled_from(["", "e5", "E-3", "e+10"]),
).filter(lambda t: ("." in t or "e" in t.lower()) and (abs(float(t)) == 0 or 1e-37 <= abs(float(t)) < 1e38))
# -2147483648 is no integer token: 2147483648 is read as a number, then negated
# (a float constant, and a fixed point too).
constants = st.one_of(
    st.builds(Const, st.just("string"), strings),
    st.builds(Const, st.just("integer"), st.integers(-(2**31) + 1, 2**31 - 1).map(str)),
    st.builds(Const, st.just("float"), numbers),
    st.builds(Const, st.just("boolean"), st.sampled_from(["true", "false"])),
    st.just(Const("null", "")),
)
# Ending in "x": no pattern ends with an escape, read as text or as bytea.
like_patterns = strings.map(lambda s: s + "x")


def _flat(op: str, args: list[Expr]) -> BoolOp:
    flat: list[Expr] = []
    for a in args:
        flat.extend(a.args if isinstance(a, BoolOp) and a.op == op else (a,))
    return BoolOp("AND" if op == "AND" else "OR", tuple(flat))


def _compound(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    several = st.lists(children, min_size=1, max_size=3).map(tuple)
    return st.one_of(
        st.builds(Op, st.sampled_from(["=", "<>", "<", ">", "<=", ">="]), children, children),
        st.builds(
            Op,
            st.sampled_from(["~~", "!~~", "~~*", "!~~*"]),
            children,
            like_patterns.map(lambda s: Const("string", s)),
        ),
        st.builds(
            Op, st.sampled_from(["~", "~*", "!~", "!~*"]), children, strings.map(lambda s: Const("string", s))
        ),
        st.builds(_flat, st.sampled_from(["AND", "OR"]), st.lists(children, min_size=2, max_size=3)),
        st.builds(Not, children),
        st.builds(NullTest, children, st.booleans()),
        st.builds(
            BoolTest,
            children,
            st.sampled_from(
                ["IS TRUE", "IS NOT TRUE", "IS FALSE", "IS NOT FALSE", "IS UNKNOWN", "IS NOT UNKNOWN"]
            ),
        ),
        st.builds(Distinct, children, children, st.booleans()),
        st.builds(InList, children, st.lists(constants, min_size=1, max_size=3).map(tuple), st.booleans()),
        st.builds(Between, children, constants, constants, st.booleans()),
        st.builds(
            Func, st.sampled_from(["lower", "upper", "length", "char_length"]), children.map(lambda c: (c,))
        ),
        st.builds(
            Func,
            st.sampled_from(["btrim", "ltrim", "rtrim"]),
            st.lists(children, min_size=1, max_size=2).map(tuple),
        ),
        st.builds(Coalesce, several),
        st.builds(NullIf, children, children),
        st.builds(MinMax, st.sampled_from(["GREATEST", "LEAST"]), several),
    )


# One column per example: a value expression (a comparison, a function)
# may read only one, and AND, OR, NOT and IS of them are what mixes columns.
trees = st.recursive(
    st.one_of(st.shared(column_names, key="column").map(Column), constants), _compound, max_leaves=12
).filter(lambda t: bool(columns(t)))


@settings(max_examples=400, deadline=None)
@given(trees)
def test_emitted_text_parses_back_to_the_same_tree(tree: Expr) -> None:
    text = emit(tree)
    read, problems = _read(text, False)
    assert problems == () and read == tree, (text, problems)
    assert filter_sql(text) == text  # emitting twice is a fixed point


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.one_of(column_names.map(Column), constants),
        lambda children: st.one_of(
            _compound(children),
            st.builds(
                Cast,
                children,
                st.sampled_from(
                    [("text",), ("pg_catalog", "int4"), ("pg_catalog", "varchar"), ("app", 'st"at')]
                ),
                st.sampled_from([(), (10,), (10, 2)]),
                st.booleans(),
            ),
        ),
        max_leaves=8,
    )
)
def test_postgresql_forms_are_written_out_again_the_same(tree: Expr) -> None:
    text = emit(tree)
    assert _read(text, True) == (tree, ())
    assert filter_sql(text, server_forms=True) == text


@pytest.mark.server
@settings(max_examples=150, deadline=None)
@given(value=strings, name=column_names, standard=st.booleans())
def test_a_server_reads_the_emitted_text_as_the_tree_says(
    pg_servers: Any, value: str, name: str, standard: bool
) -> None:
    """The round trips above are pglast's reading; this is PostgreSQL's, standard strings on or off."""
    text = emit(Op("=", Column(name), Const("string", value)))
    with psycopg.connect(pg_servers.dsn(0), autocommit=True) as conn:
        conn.execute("SET escape_string_warning = off")
        conn.execute(
            sql.SQL("SET standard_conforming_strings = {}").format(sql.SQL("on" if standard else "off"))
        )
        query = sql.SQL("SELECT count(*) FROM (SELECT {}::text AS {}) AS r WHERE {}").format(
            sql.Literal(value),
            sql.Identifier(name),
            sql.SQL(text),  # type: ignore[arg-type]
        )
        assert conn.execute(query).fetchall() == [(1,)], text


# --------------------------------------------------------------------------
# real servers: text that carries payloads reaches no server as statements
# --------------------------------------------------------------------------

# String constants a valid filter may compare with; each was a way out of a
# string literal once a server read backslashes as escapes.
CONSTANTS = [
    "\\' = $x$' = '' )) NOT VALID; COPY (SELECT current_user) TO PROGRAM 'cat > pwned.txt'; --$x$",
    "\\",
    "\\'); COPY (SELECT 1) TO PROGRAM 'cat > pwned.txt'; --",
    "$x$'; COPY (SELECT 1) TO PROGRAM 'cat > pwned.txt'; --$x$",
    "E'\\\\' \\\\ '' -- /* \\",
]


def _standard(value: str) -> str:
    """A string constant as the desired state writes it (standard strings: only quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _declared(value: str) -> str:
    return f"s = {_standard(value)}"


@pytest.fixture
def payload_node(network: Any) -> Any:
    """One database with public.payload holding each constant (ids 1..) and near misses (ids 100..)."""
    net = network(parents={"nation": None})
    node = "nation"
    net.execute(node, "CREATE TABLE public.payload (id integer PRIMARY KEY, s text NOT NULL)")
    for i, value in enumerate(CONSTANTS, start=1):
        net.execute(node, "INSERT INTO public.payload VALUES (%s, %s)", (i, value))
        # What a server reading backslashes as escapes would make of it.
        near = value.replace("\\", "") if "\\" in value else value + "\\"
        net.execute(node, "INSERT INTO public.payload VALUES (%s, %s)", (100 + i, near))
    net.execute(node, "INSERT INTO public.payload VALUES (200, 'other')")
    return net


def _data_dir(net: Any) -> Path:
    return Path(net.execute("nation", "SHOW data_directory")[0][0])


def _off(net: Any) -> psycopg.Connection[Any]:
    """A session that reads backslashes in '...' as escapes, as a node's admin_dsn options can make it."""
    conn: psycopg.Connection[Any] = net.connect("nation")
    conn.execute("SET standard_conforming_strings = off")
    conn.execute("SET escape_string_warning = off")
    return conn


def _passing(conn: psycopg.Connection[Any], where: sql.Composable) -> list[int]:
    query = sql.SQL("SELECT id FROM public.payload WHERE {} ORDER BY id").format(where)
    return [row[0] for row in conn.execute(query).fetchall()]


@pytest.mark.server
@pytest.mark.parametrize("number", range(1, len(CONSTANTS) + 1))
def test_verify_filter_means_what_it_says_with_standard_strings_off(payload_node: Any, number: int) -> None:
    value = CONSTANTS[number - 1]
    declared = _declared(value)
    assert _read(declared, False)[0] == Op("=", Column("s"), Const("string", value))
    off = _off(payload_node)
    assert _passing(off, passes(declared)) == [number]
    assert not (_data_dir(payload_node) / "pwned.txt").exists()


@pytest.mark.server
@pytest.mark.parametrize("number", range(1, len(CONSTANTS) + 1))
def test_native_publication_ddl_with_standard_strings_off(payload_node: Any, number: int) -> None:
    declared = _declared(CONSTANTS[number - 1])
    net, off = payload_node, _off(payload_node)
    off.execute("CREATE PUBLICATION p1")
    off.execute(native_statements.add_table_sql("p1", "public.payload", SetTable(row_filter=declared)))
    # Read back in a session with standard strings: the stored filter selects exactly that row.
    [(stored,)] = net.execute("nation", "SELECT pg_get_expr(prqual, prrelid) FROM pg_publication_rel")
    assert _passing(net.connect("nation"), sql.SQL(stored)) == [number]
    # The normal form a plan carries to apply is written out again, and means the same.
    off.execute("CREATE PUBLICATION p2")
    off.execute(native_statements.add_table_sql("p2", "public.payload", SetTable(row_filter=stored)))
    [(again,)] = net.execute(
        "nation",
        "SELECT pg_get_expr(r.prqual, r.prrelid) FROM pg_publication_rel r"
        " JOIN pg_publication p ON p.oid = r.prpubid WHERE p.pubname = 'p2'",
    )
    assert again == stored
    # Normal forms now come only from inspection (issue 14: the engines' own
    # normalisers are gone), whose sessions pin standard_conforming_strings (test_db).
    assert not (_data_dir(net) / "pwned.txt").exists()


@pytest.mark.server
@pytest.mark.parametrize("number", range(1, len(CONSTANTS) + 1))
def test_pglogical_add_table_with_standard_strings_off(payload_node: Any, number: int) -> None:
    declared = _declared(CONSTANTS[number - 1])
    net, off = payload_node, _off(payload_node)
    off.execute("SELECT pglogical.create_node(node_name := 'n', dsn := %s)", (net.dsn("nation"),))
    off.execute("SELECT pglogical.create_replication_set('s', true, true, true, false)")
    spec = SetTable(row_filter=installed_filter(declared, "pglogical"))
    off.execute(pglogical_statements.add_table_sql("s", "public.payload", spec, False))
    rows = "SELECT id FROM pglogical.table_data_filtered(NULL::public.payload, 'public.payload'::regclass, ARRAY['s']) ORDER BY id"
    assert [r[0] for r in off.execute(rows).fetchall()] == [number]
    [(stored,)] = net.execute(
        "nation", "SELECT pg_get_expr(set_row_filter, set_reloid) FROM pglogical.replication_set_table"
    )
    # The normal form (what a plan carries) added again with the session still off: same rows.
    off.execute(pglogical_statements.remove_table_sql("s", "public.payload"))
    off.execute(pglogical_statements.add_table_sql("s", "public.payload", SetTable(row_filter=stored), False))
    assert [r[0] for r in off.execute(rows).fetchall()] == [number]
    assert not (_data_dir(net) / "pwned.txt").exists()


def _probe(conn: psycopg.Connection[Any], payload: dict[str, Any]) -> list[dict[str, Any]]:
    """probe.sql as inspection runs it (its input as a JSON value), in a rolled-back transaction."""
    with conn.transaction(force_rollback=True):
        conn.execute("SELECT set_config('reconcile.inspect_input', %s, true)", (json.dumps(payload),))
        conn.execute(sql.SQL(sql_text("probe")))  # type: ignore[arg-type]
        [(found,)] = conn.execute("SELECT current_setting('reconcile.inspect_filters')").fetchall()
    result: list[dict[str, Any]] = json.loads(found)
    return result


def _payload_state(net: Any, row_filter: str) -> Any:
    approved = net.state.replication_sets["approved"]
    decl = approved.model_copy(update={"tables": {"public.payload": SetTable(row_filter=row_filter)}})
    return net.state.model_copy(update={"replication_sets": {"approved": decl}})


@pytest.mark.server
@pytest.mark.parametrize("number", range(1, len(CONSTANTS) + 1))
def test_probe_with_standard_strings_off(payload_node: Any, number: int) -> None:
    declared = _declared(CONSTANTS[number - 1])
    net, off = payload_node, _off(payload_node)
    state = _payload_state(net, declared)
    request = build_request(state, "nation", desired_catalogs(state)["nation"])
    assert request.problems == ()
    [answer] = _probe(off, request.input)
    normal = answer["expr"]  # as pg_get_expr writes it in that session
    assert _passing(off, sql.SQL("(" + normal + ")")) == [number]
    assert not (_data_dir(net) / "pwned.txt").exists()


@pytest.mark.server
def test_the_probe_ran_the_payload_when_handed_the_text_as_written(payload_node: Any) -> None:
    """Why the probe must only ever get filter_sql's text: the splice itself is what ran COPY."""
    net, off = payload_node, _off(payload_node)
    pwned = _data_dir(net) / "pwned.txt"
    state = _payload_state(net, "s = 'x'")
    request = build_request(state, "nation", desired_catalogs(state)["nation"])
    raw = dict(request.input)
    raw["filters"] = [{**request.input["filters"][0], "filter": f"({PAYLOAD_THAT_RUNS}) IS NOT FALSE"}]
    try:
        _probe(off, raw)
        assert pwned.exists()  # the attack is real: this is what filter_sql prevents
    finally:
        pwned.unlink(missing_ok=True)
    assert check_row_filter(PAYLOAD_THAT_RUNS) != []
    # The same constants in a valid filter, as the tool sends it: nothing runs.
    state = _payload_state(net, f"s = 'x' OR {PAYLOAD_THAT_RUNS}")
    request = build_request(state, "nation", desired_catalogs(state)["nation"])
    [answer] = _probe(off, request.input)
    assert "expr" in answer and not pwned.exists()


@pytest.mark.server
def test_an_invalid_regular_expression_is_the_probes_error(payload_node: Any) -> None:
    net = payload_node
    state = _payload_state(net, "s ~ 'a(' OR s ~* '[z-a]'")
    request = build_request(state, "nation", desired_catalogs(state)["nation"])
    [answer] = _probe(net.connect("nation"), request.input)
    assert answer == {"error": "invalid regular expression: parentheses () not balanced"}
    good = _payload_state(net, "s ~ '^a(b|c)$' OR s ~* 'x'")
    request = build_request(good, "nation", desired_catalogs(good)["nation"])
    [answer] = _probe(net.connect("nation"), request.input)
    assert "expr" in answer


# Filters validate accepts and a CHECK accepts, that raise only when a row
# is filtered: in a provider's walsender that stops the link for good.
ONLY_A_ROW_RAISES = [
    ("ci LIKE 'a%'", "column ci has the nondeterministic collation ci"),
    ("ci ~* 'a'", "column ci has the nondeterministic collation ci"),
    ("ja = '{\"{}\"}'", "column ja is json[], an array or composite type"),
    ("ja IN ('{\"{}\"}')", "column ja is json[], an array or composite type"),
    ("GREATEST(pt, '(1,1)') IS NOT NULL", "could not identify a comparison function for type point"),
]


@pytest.fixture
def typed_node(network: Any) -> Any:
    """One database with public.typed: a nondeterministic collation, a json[] and a point column, one row."""
    net = network(parents={"nation": None})
    net.execute(
        "nation",
        "CREATE COLLATION public.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
    )
    net.execute(
        "nation",
        "CREATE TABLE public.typed (id integer PRIMARY KEY, ci text COLLATE public.ci NOT NULL,"
        " ja json[] NOT NULL, pt point NOT NULL)",
    )
    net.execute("nation", "INSERT INTO public.typed VALUES (1, 'abc', ARRAY['{}'::json], point(2, 2))")
    return net


def _typed_request(net: Any, row_filter: str) -> Any:
    approved = net.state.replication_sets["approved"]
    decl = approved.model_copy(update={"tables": {"public.typed": SetTable(row_filter=row_filter)}})
    state = net.state.model_copy(update={"replication_sets": {"approved": decl}})
    return build_request(state, "nation", desired_catalogs(state)["nation"])


@pytest.mark.server
@pytest.mark.parametrize(("text", "error"), ONLY_A_ROW_RAISES)
def test_what_only_a_row_raises_is_the_probes_error(typed_node: Any, text: str, error: str) -> None:
    net = typed_node
    conn = net.connect("nation")
    assert check_row_filter(text) == []
    # The attack is real: pglogical filtering the row raises (its walsender would, on every retry).
    with pytest.raises(psycopg.Error), conn.transaction(force_rollback=True):
        conn.execute("SELECT pglogical.create_node(node_name := 'n', dsn := %s)", (net.dsn("nation"),))
        conn.execute("SELECT pglogical.create_replication_set('s', true, true, true, false)")
        spec = SetTable(row_filter=installed_filter(text, "pglogical"))
        conn.execute(pglogical_statements.add_table_sql("s", "public.typed", spec, False))
        conn.execute(
            "SELECT count(*) FROM pglogical.table_data_filtered(NULL::public.typed,"
            " 'public.typed'::regclass, ARRAY['s'])"
        )
    request = _typed_request(net, text)
    assert request.problems == ()
    [answer] = _probe(conn, request.input)
    assert error in answer.get("error", ""), answer


@pytest.mark.server
def test_the_probe_still_accepts_those_columns_where_no_row_can_raise(typed_node: Any) -> None:
    request = _typed_request(typed_node, "ci = 'ABC' AND ja IS NOT NULL AND LEAST(id, 2) > 0")
    [answer] = _probe(typed_node.connect("nation"), request.input)
    assert "expr" in answer, answer
    [probe] = request.probes
    assert probe.cacheable and probe.pattern_columns == () and probe.compared_columns == ("ci", "id")
    # The answer for a pattern depends on the column's collation, which the cache's signature lacks.
    [probe] = _typed_request(typed_node, "ci LIKE 'a%' AND id > 0").probes
    assert not probe.cacheable and probe.pattern_columns == ("ci",)


# --------------------------------------------------------------------------
# real servers: the whole tool, with a node whose session has standard strings off
# --------------------------------------------------------------------------


def _with_payload(net: Any, row_filter: str) -> Path:
    """The network's desired state with a filter on public.payload and admin DSNs that turn standard strings off."""
    yaml = YAML(typ="safe")
    topology_file = net.dir / "topology.yaml"
    topology = yaml.load(topology_file.read_text())
    for node in topology["nodes"].values():
        node["admin_dsn"] = node["dsn"] + " options='-c standard_conforming_strings=off'"
    with topology_file.open("w") as out:
        yaml.dump(topology, out)
    sets = {"replication_sets": {"approved": {"tables": {"public.payload": {"row_filter": row_filter}}}}}
    with (net.dir / "replication.yaml").open("w") as out:
        yaml.dump(sets, out)
    return Path(net.dir)


@pytest.mark.server
@pytest.mark.parametrize(
    "row_filter",
    [
        PAYLOAD,
        PAYLOAD_THAT_RUNS,
        PAYLOAD.replace("'\\'", "'\\\\\\'"),
        "s = '\\' OR 1/(id - id) = 0",
        "pg_catalog.set_config('a.b', $x$' ; COPY (SELECT 1) TO PROGRAM 'cat > pwned.txt'$x$, false) = s",
    ],
)
@pytest.mark.parametrize(
    "command", [["plan"], ["verify"], ["verify", "--repair"], ["apply", "--auto-approve"]]
)
def test_every_command_refuses_a_payload_before_any_server(
    payload_node: Any, row_filter: str, command: list[str]
) -> None:
    net = payload_node
    directory = _with_payload(net, row_filter)
    result = cli(*command, "-d", str(directory))
    assert result.exit_code not in (0, 2), result.output
    assert "row_filter" in result.output
    assert not (_data_dir(net) / "pwned.txt").exists()


# A valid filter whose constants held the payload: with standard strings off
# and the text spliced as written, the probe ran COPY during `plan`.
CARRIER = (
    "s = 'x' OR s = '\\' OR s = $x$' OR true )) NOT VALID;"
    " COPY (SELECT current_user) TO PROGRAM 'cat > pwned.txt'; SELECT 1 --$x$"
)


@pytest.mark.server
@pytest.mark.parametrize("engine", ["pglogical", "native"])
def test_plan_apply_and_verify_with_a_carrier_filter_and_standard_strings_off(
    network: Any, engine: str
) -> None:
    """The whole tool on databases whose sessions read backslashes as escapes (unless the tool pins them)."""
    schema = "CREATE TABLE public.payload (id uuid PRIMARY KEY, s text NOT NULL);\n"
    net = network(parents={"nation": None, "region_east": "nation"}, schema_sql=schema)
    yaml = YAML(typ="safe")
    topology = yaml.load((net.dir / "topology.yaml").read_text())
    topology["engine"] = engine
    with (net.dir / "topology.yaml").open("w") as out:
        yaml.dump(topology, out)
    sets = {"replication_sets": {"approved": {"tables": {"public.payload": {"row_filter": CARRIER}}}}}
    with (net.dir / "replication.yaml").open("w") as out:
        yaml.dump(sets, out)
    dollar = CARRIER.split("$x$")[1]
    assert _read(CARRIER, False)[0] is not None and "'\\''" not in filter_sql(CARRIER)
    for node in ("nation", "region_east"):
        database = net.execute(node, "SELECT current_database()")[0][0]
        net.execute(node, f'ALTER DATABASE "{database}" SET standard_conforming_strings = off')
        net.execute(node, f'ALTER DATABASE "{database}" SET escape_string_warning = off')
    region = net.connect("region_east")
    for i, value in enumerate(["x", "\\", dollar, "other", dollar.replace("'", "")], start=1):
        region.execute(
            "INSERT INTO public.payload VALUES (%s, %s)", (f"00000000-0000-0000-0000-{i:012}", value)
        )
    directory = str(net.dir)
    planned = cli("plan", "-d", directory)
    assert planned.exit_code in (0, 2), planned.output
    applied = cli("apply", "-d", directory, "--auto-approve")
    assert applied.exit_code == 0, applied.output
    nation = net.connect("nation")

    def arrived() -> bool:
        rows = nation.execute("SELECT right(id::text, 1) FROM public.payload ORDER BY id").fetchall()
        return [r[0] for r in rows] == ["1", "2", "3"]

    wait_for(arrived, "the rows that pass the filter, and only those")
    assert cli("plan", "-d", directory, "--detailed-exitcode").exit_code == 0
    verified = cli("verify", "-d", directory)
    assert verified.exit_code == 0, verified.output
    for node in ("nation", "region_east"):
        assert not (Path(net.execute(node, "SHOW data_directory")[0][0]) / "pwned.txt").exists()
