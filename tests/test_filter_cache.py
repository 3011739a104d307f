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
    database_key,
    signature,
)

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


def test_database_key_names_server_and_database_never_user_or_password() -> None:
    key = database_key("host=127.0.0.1 port=5433 dbname=nation user=admin password=s3cret")
    assert key == "localhost:5433/nation"
    assert database_key("postgresql://admin:s3cret@db.example:5432/region") == "db.example:5432/region"


def test_signature_changes_with_server_version_and_every_column() -> None:
    base = signature("42", 150020, TABLE)
    assert base == "42/150020/id uuid,status text"
    assert signature("43", 150020, TABLE) != base  # another server behind the same address
    assert signature("42", 160001, TABLE) != base  # upgraded
    retyped = TABLE.model_copy(
        update={"columns": {**TABLE.columns, "status": ColumnFacts(type="varchar", not_null=True)}}
    )
    assert signature("42", 150020, retyped) != base
    grown = TABLE.model_copy(
        update={"columns": {**TABLE.columns, "x": ColumnFacts(type="int", not_null=False)}}
    )
    assert signature("42", 150020, grown) != base
    assert signature("42", 150020, TableFacts(exists=False)) != base  # dropped


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
    "text", ["", "{", "[]", '{"format": 2, "databases": {}}', '{"format": 1, "databases": 3}']
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
