"""Migrations of the desired state, offline: names, numbering, parse, refusals, bounds, git revisions."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.errors import LoadError
from reconciler.gitops import load_revision
from reconciler.load import load_desired_state
from reconciler.migrations import MAX_MIGRATION_BYTES

EXAMPLE = Path(__file__).resolve().parent.parent / "desired-state"


def _state_dir(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    directory = tmp_path / "ds"
    directory.mkdir()
    for name in ("topology.yaml", "replication.yaml"):
        shutil.copy(EXAMPLE / name, directory / name)
    (directory / "migrations").mkdir()
    for name, text in files.items():
        path = directory / "migrations" / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
    return directory


def _problems(directory: Path) -> list[str]:
    with pytest.raises(LoadError) as caught:
        load_desired_state(directory)
    return [str(p) for p in caught.value.problems]


def test_valid_migrations_load_in_order_with_checksums_and_created_tables(tmp_path: Path) -> None:
    directory = _state_dir(
        tmp_path,
        {
            "0002_drop.sql": "-- reconcile: leaves-first\nALTER TABLE public.technology DROP COLUMN x;\n",
            "0001_add.sql": "ALTER TABLE public.technology ADD COLUMN x int;\nCREATE TABLE public.p (id uuid);\n",
            "README.md": "not a migration",
        },
    )
    first, second = load_desired_state(directory).migrations
    assert (first.name, second.name) == ("0001_add", "0002_drop")
    assert first.creates == ("public.p",) and not first.leaves_first and second.leaves_first
    assert len(first.statements) == 2 and len(first.checksum) == 64


def test_the_primary_key_of_each_created_table_is_read_from_the_sql(tmp_path: Path) -> None:
    # The native engine plans a new table's replica identity from it, before the table exists.
    text = (
        "CREATE TABLE public.a (id uuid PRIMARY KEY, x int);\n"
        "CREATE TABLE public.b (k int, v int, PRIMARY KEY (v, k));\n"
        "CREATE TABLE public.c (x int);\n"
    )
    (migration,) = load_desired_state(_state_dir(tmp_path, {"0001_tables.sql": text})).migrations
    assert migration.creates == ("public.a", "public.b", "public.c")
    assert migration.keys == {"public.a": ("id",), "public.b": ("v", "k")}


def test_every_problem_is_named_at_file_line_column(tmp_path: Path) -> None:
    directory = _state_dir(
        tmp_path,
        {
            "0001_ok.sql": "SELECT 1;\n",
            "0001_twice.sql": "SELECT 2;\n",
            "0003_syntax.sql": "SELECT 1;\nALTER TABL public.x;\n",
            "0004_tx.sql": "BEGIN;\nCOMMIT;\n",
            "0005_set.sql": "SET session_replication_role = replica;\n",
            "0006_bare.sql": "CREATE TABLE t (id int);\n",
            "0007_directive.sql": "-- reconcile: leaves-frist\nSELECT 1;\n",
            "0008_big.sql": "-- " + "x" * MAX_MIGRATION_BYTES + "\n",
            "0009_empty.sql": "-- nothing\n",
            "10_name.sql": "SELECT 1;\n",
        },
    )
    found = "\n".join(_problems(directory))
    m = str(directory / "migrations")
    assert f"{m}/0001_twice.sql:1:1: migration number 0001 is also used by {m}/0001_ok.sql" in found
    assert f"{m}/0003_syntax.sql:2:7: SQL syntax error" in found
    assert "migration 0002 is missing" in found
    assert f"{m}/0004_tx.sql:1:1: transaction control" in found
    assert f"{m}/0005_set.sql:1:1: SET, RESET and ALTER SYSTEM are not allowed" in found
    assert f"{m}/0006_bare.sql:1:1: schema-qualify the table name (t)" in found
    assert f"{m}/0007_directive.sql:1:1: unknown directive" in found
    assert f"{m}/0008_big.sql:1:1: file is" in found
    assert f"{m}/0009_empty.sql:1:1: the migration holds no statement" in found
    assert f"{m}/10_name.sql:1:1: a migration is named NNNN_<name>.sql" in found


def test_a_linked_migration_or_a_migrations_key_in_yaml_is_refused(tmp_path: Path) -> None:
    directory = _state_dir(tmp_path, {})
    (directory / "migrations" / "0001_link.sql").symlink_to("/etc/passwd")
    with (directory / "topology.yaml").open("a") as out:
        out.write("migrations: []\n")
    found = "\n".join(_problems(directory))
    assert "0001_link.sql:1:1: not a regular file (a symbolic link)" in found
    assert "migrations are SQL files in the migrations/ directory, not a YAML key" in found


def test_a_git_revision_reads_its_own_migrations(tmp_path: Path) -> None:
    directory = _state_dir(tmp_path, {"0001_add.sql": "ALTER TABLE public.technology ADD COLUMN x int;\n"})
    git = ["git", "-C", str(directory), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    (directory / "migrations" / "0002_later.sql").write_text("SELECT 1;\n")  # not committed
    (first,) = load_revision(directory, "HEAD").migrations
    assert first.name == "0001_add"
    assert [m.name for m in load_desired_state(directory).migrations] == ["0001_add", "0002_later"]
