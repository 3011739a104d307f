"""The row-filter cache on its own (no server): keys, signatures, what is written and when."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.inspect.facts import ColumnFacts, TableFacts
from reconciler.inspect.filter_cache import (
    FILE_NAME,
    Answer,
    FilterCache,
    cache_dir,
    connection_key,
    signature,
)
from reconciler.inspect.read import expected_failure
from reconciler.row_filter import is_self_contained

TABLE = TableFacts(
    exists=True,
    columns={
        "id": ColumnFacts(type="uuid", not_null=True),
        "status": ColumnFacts(type="text", not_null=True),
    },
)
USED = {
    "public.approach": {"(status = 'a') IS NOT FALSE": Answer("sig", "((status = 'a'::text) IS NOT FALSE)")}
}


def test_database_key_is_the_connection_without_secrets() -> None:
    key = connection_key("host=127.0.0.1 port=5433 dbname=nation user=admin password=s3cret")
    assert key == "dbname=nation host=127.0.0.1 port=5433 user=admin"
    assert "s3cret" not in connection_key("postgresql://admin:s3cret@db.example:5432/region")
    # Service files name neither host nor database: two services are two databases.
    assert connection_key("service=district_a") != connection_key("service=district_b")


SERVER = {
    "system_identifier": "42",
    "server_version_num": 150020,
    "database": "nation",
    "role": "postgres",
    "search_path": "pg_catalog,public",
}


@pytest.mark.parametrize(
    "change",
    [
        {"system_identifier": "43"},  # another server behind the same address
        {"server_version_num": 160001},  # upgraded
        {"database": "nation2"},
        {"role": "admin"},
        {"search_path": "pg_catalog,app,public"},  # names resolve elsewhere
    ],
)
def test_signature_changes_with_what_resolves_names(change: dict[str, object]) -> None:
    assert signature({**SERVER, **change}, TABLE) != signature(SERVER, TABLE)


def test_signature_changes_with_every_column() -> None:
    base = signature(SERVER, TABLE)
    assert base.endswith("/id uuid,status text")
    retyped = TABLE.model_copy(
        update={"columns": {**TABLE.columns, "status": ColumnFacts(type="varchar", not_null=True)}}
    )
    assert signature(SERVER, retyped) != base
    grown = TABLE.model_copy(
        update={"columns": {**TABLE.columns, "x": ColumnFacts(type="int", not_null=False)}}
    )
    assert signature(SERVER, grown) != base
    assert signature(SERVER, TableFacts(exists=False)) != base  # dropped


def test_saved_answers_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "sub" / FILE_NAME
    FilterCache(path).save({"localhost:5432/nation": USED})
    again = FilterCache(path)
    assert (
        again.lookup("localhost:5432/nation", "public.approach", "(status = 'a') IS NOT FALSE")
        == (USED["public.approach"]["(status = 'a') IS NOT FALSE"])
    )
    assert again.lookup("localhost:5432/nation", "public.approach", "(status = 'b') IS NOT FALSE") is None
    assert again.lookup("localhost:5432/region", "public.approach", "(status = 'a') IS NOT FALSE") is None
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_plan_with_nothing_new_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / FILE_NAME
    FilterCache(path).save({"localhost:5432/nation": USED})
    cache = FilterCache(path)

    def refuse(*_: object) -> None:
        raise AssertionError("the cache file was rewritten")

    monkeypatch.setattr(os, "replace", refuse)
    cache.save({"localhost:5432/nation": USED})


def test_a_database_keeps_only_what_it_used_others_are_kept(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    FilterCache(path).save({"localhost:5432/nation": USED, "localhost:5432/region": USED})
    changed = {
        "public.approach": {
            "(status = 'b') IS NOT FALSE": Answer("sig", "((status = 'b'::text) IS NOT FALSE)")
        }
    }
    FilterCache(path).save({"localhost:5432/nation": changed})
    document = json.loads(path.read_text())
    assert list(document["databases"]["localhost:5432/nation"]["public.approach"]) == [
        "(status = 'b') IS NOT FALSE"
    ]
    assert "localhost:5432/region" in document["databases"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"format": 3, "databases": {}}',
        '{"format": 2, "databases": 3}',
        # Format 1 keyed filters as written and never compiled their regular
        # expressions: its answers are not used.
        '{"format": 1, "databases": {"localhost:5432/nation": {"public.approach":'
        ' {"x": {"signature": "s", "normal": "n"}}}}}',
    ],
)
def test_a_damaged_file_is_an_empty_cache(tmp_path: Path, text: str) -> None:
    path = tmp_path / FILE_NAME
    path.write_text(text)
    assert FilterCache(path).lookup("localhost:5432/nation", "public.approach", "x") is None


def test_where_the_cache_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECONCILE_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.setenv("RECONCILE_CACHE_DIR", "")
    assert cache_dir() is None and FilterCache.default().path is None
    monkeypatch.delenv("RECONCILE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "reconcile"


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("approved", True),
        ("status = 'approved'", True),
        ("status IN ('approved', 'submitted') AND district <> 'x'", True),
        ("NOT (status = 'draft') OR updated_at > '2020-01-01'", True),
        ("n BETWEEN 1 AND 2 AND title IS NOT NULL AND flag IS NOT FALSE", True),
        ("title LIKE 'a%' OR title ILIKE 'b%'", True),
        # A built-in function, sent schema-qualified (pg_catalog.lower): no
        # object of the database can change what it means.
        ("lower(district) = 'a'", True),
        # Refused filters are never sent, so never remembered:
        ("is_public(district)", False),  # a user function: it can be dropped or replaced
        ("public.lower(district) = 'a'", False),
        ("n::int > 1", False),  # a cast to a type resolved by name
        ("a OPERATOR(public.===) b", False),
        ("a === b", False),  # not a built-in operator
        ("ARRAY[1] = ARRAY[n]", False),
        ("(SELECT true)", False),
        ("not valid (", False),
    ],
)
def test_only_self_contained_filters_are_remembered(text: str, plain: bool) -> None:
    assert is_self_contained(text) is plain


@pytest.mark.parametrize(
    ("failed", "sqlstate", "server", "missing"),
    [
        ("pglogical/node", "3F000", {"pglogical_version": None, "server_version_num": 150020}, "pglogical"),
        ("pglogical/node", "3F000", {"pglogical_version": "2.4.2", "server_version_num": 150020}, None),
        ("pglogical/sets", "42P01", {"pglogical_version": None, "server_version_num": 150020}, None),
        ("native/publications", "42P01", {"pglogical_version": None, "server_version_num": 140010}, "native"),
        ("native/publications", "42P01", {"pglogical_version": None, "server_version_num": 150020}, None),
        ("relations", "57014", {"pglogical_version": None, "server_version_num": 150020}, None),
        ("server", "57014", None, None),
    ],
)
def test_which_failures_mean_something_is_absent(
    failed: str, sqlstate: str, server: dict[str, object] | None, missing: str | None
) -> None:
    assert expected_failure(failed, sqlstate, server) == missing


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    FilterCache(tmp_path / FILE_NAME).save({"dbname=nation": USED})
    assert list(tmp_path.iterdir()) == []
