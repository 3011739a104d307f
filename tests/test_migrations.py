"""Migrations of the desired state, offline: names, numbering, parse, refusals, bounds, git revisions."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler.engines.migrations import _wait_confirmed
from reconciler.errors import ApplyError, LoadError
from reconciler.gitops import load_revision
from reconciler.load import load_desired_state
from reconciler.migrations import MAX_MIGRATION_BYTES, MAX_STATEMENTS

OK = "ALTER TABLE public.technology ADD COLUMN x int;\n"
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
            "0001_ok.sql": OK,
            "0001_twice.sql": OK,
            "0003_syntax.sql": OK + "ALTER TABL public.x;\n",
            "0004_tx.sql": "BEGIN;\nCOMMIT;\n",
            "0005_set.sql": "SET session_replication_role = replica;\n",
            "0006_bare.sql": "CREATE TABLE t (id int);\n",
            "0007_directive.sql": "-- reconcile: leaves-frist\n" + OK,
            "0008_big.sql": "-- " + "x" * MAX_MIGRATION_BYTES + "\n",
            "0009_empty.sql": "-- nothing\n",
            "10_name.sql": OK,
        },
    )
    found = "\n".join(_problems(directory))
    m = str(directory / "migrations")
    assert f"{m}/0001_twice.sql:1:1: migration number 0001 is also used by {m}/0001_ok.sql" in found
    assert f"{m}/0003_syntax.sql:2:7: SQL syntax error" in found
    assert "migration 0002 is missing" in found
    assert f"{m}/0004_tx.sql:1:1: transaction control" in found
    assert f"{m}/0005_set.sql:1:1: SET, RESET and ALTER SYSTEM are not allowed" in found
    assert f"{m}/0006_bare.sql:1:14: schema-qualify the table name (t)" in found
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
    (directory / "migrations" / "0002_later.sql").write_text(OK)  # not committed
    (first,) = load_revision(directory, "HEAD").migrations
    assert first.name == "0001_add"
    assert [m.name for m in load_desired_state(directory).migrations] == ["0001_add", "0002_later"]


# Each class of SQL a reviewer found escaping the tool's bounds: (text, what the refusal says).
REFUSED = [
    ("SELECT set_config('statement_timeout', '0', false);", "SelectStmt is not allowed"),
    ("DO $$ BEGIN PERFORM 1; END $$;", "DoStmt is not allowed"),
    ("COPY public.technology TO PROGRAM 'sh -c id';", "CopyStmt is not allowed"),
    ("ALTER ROLE reconcile SUPERUSER;", "AlterRoleStmt is not allowed"),
    ("CREATE ROLE x LOGIN;", "CreateRoleStmt is not allowed"),
    ("GRANT ALL ON public.technology TO PUBLIC;", "GrantStmt is not allowed"),
    ("ALTER DATABASE postgres SET statement_timeout = 0;", "AlterDatabaseSetStmt is not allowed"),
    ("CREATE EXTENSION dblink;", "CreateExtensionStmt is not allowed"),
    ("UPDATE public.technology SET x = dblink_exec('host=h', 'DROP TABLE t');", "dblink_exec() is not allowed"),
    ("CREATE FUNCTION public.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';",
     "CreateFunctionStmt is not allowed"),
    ("CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION public.f();", "CreateEventTrigStmt is not allowed"),
    ("CREATE TRIGGER t BEFORE INSERT ON public.technology FOR EACH ROW EXECUTE FUNCTION public.f();",
     "CreateTrigStmt is not allowed"),
    ("ALTER TABLE public.technology ENABLE ALWAYS TRIGGER t;", "ALTER TABLE EnableAlwaysTrig is not allowed"),
    ("DELETE FROM public.technology WHERE pg_drop_replication_slot('s') IS NULL;",
     "pg_drop_replication_slot() is not allowed"),
    ("UPDATE public.technology SET x = 1 WHERE pglogical.drop_node('n') IS NULL;",
     "pglogical.drop_node() is not allowed"),
    ("INSERT INTO public.t (x) VALUES (pg_terminate_backend(1));", "pg_terminate_backend() is not allowed"),
    ("UPDATE public.technology SET x = lo_export(1, '/tmp/x');", "lo_export() is not allowed"),
    ("UPDATE public.technology SET x = pg_sleep(29);", "pg_sleep() is not allowed"),
    ("DROP TABLE reconcile.migrations;", "is in schema reconcile, which a migration may not touch"),
    ("DELETE FROM reconcile.migrations;", "is in schema reconcile, which a migration may not touch"),
    ("ALTER TABLE pglogical.node ADD COLUMN x int;", "is in schema pglogical, which a migration may not touch"),
    ("INSERT INTO public.t SELECT rolpassword FROM pg_catalog.pg_authid;", "is in schema pg_catalog"),
    ("UPDATE technology SET x = 1;", "schema-qualify the table name (technology)"),
    ("DROP TABLE public.technology CASCADE;", "CASCADE is not allowed"),
    ("DROP SCHEMA reconcile;", "DROP SCHEMA is not allowed"),
    ("ALTER TABLE public.technology OWNER TO x;", "ALTER TABLE ChangeOwner is not allowed"),
    ("CREATE INDEX CONCURRENTLY i ON public.technology (x);", "CREATE INDEX CONCURRENTLY"),
    ("CALL public.p();", "CallStmt is not allowed"),
    ("LOCK public.technology;", "LockStmt is not allowed"),
]


@pytest.mark.parametrize(("text", "reason"), REFUSED, ids=[r[1][:40] for r in REFUSED])
def test_sql_outside_a_schema_release_is_refused_offline_at_its_place(
    tmp_path: Path, text: str, reason: str
) -> None:
    directory = _state_dir(tmp_path, {"0001_x.sql": OK + "\n" + text + "\n"})
    found = "\n".join(_problems(directory))
    assert f"{directory / 'migrations'}/0001_x.sql:3:" in found and reason in found, found


def test_what_a_schema_release_needs_is_allowed(tmp_path: Path) -> None:
    text = """CREATE TABLE public.p (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), t text, at timestamptz DEFAULT now());
ALTER TABLE public.p ADD COLUMN n int NOT NULL DEFAULT 0, ALTER COLUMN t SET NOT NULL;
ALTER TABLE public.p ADD CONSTRAINT t_lower CHECK (t = lower(t));
ALTER TABLE public.p ALTER COLUMN n TYPE bigint USING n::bigint;
CREATE INDEX p_t ON public.p (lower(t));
CREATE VIEW public.v AS SELECT id, upper(t) AS t FROM public.p;
CREATE SEQUENCE public.s;
ALTER SEQUENCE public.s RESTART WITH 10;
CREATE TYPE public.e AS ENUM ('a');
ALTER TYPE public.e ADD VALUE 'b';
CREATE TYPE public.c AS (a int, b text);
COMMENT ON COLUMN public.p.t IS 'title';
ALTER TABLE public.p RENAME COLUMN n TO m;
ALTER TABLE public.p RENAME TO q;
UPDATE public.q SET t = coalesce(nullif(trim(t), ''), md5(id::text)), at = date_trunc('day', at);
WITH old AS (SELECT id FROM public.q WHERE extract(year FROM at) < 2000) DELETE FROM public.q USING old
  WHERE q.id = old.id;
INSERT INTO public.q (id, t) SELECT gen_random_uuid(), concat(greatest(1, 2), to_char(now(), 'YYYY'));
DROP VIEW public.v;
DROP INDEX public.p_t;
DROP TABLE public.q;
"""
    (migration,) = load_desired_state(_state_dir(tmp_path, {"0001_release.sql": text})).migrations
    assert len(migration.statements) == 20


def test_a_migration_has_at_most_its_bound_of_statements(tmp_path: Path) -> None:
    directory = _state_dir(tmp_path, {"0001_many.sql": OK * (MAX_STATEMENTS + 1)})
    found = "\n".join(_problems(directory))
    assert f"holds {MAX_STATEMENTS + 1} statements, more than {MAX_STATEMENTS}" in found


class _Provider:
    """A provider on which the slot is missing."""

    def execute(self, query: str, params: Any = None) -> Any:
        rows = [("0/1",)] if "pg_current_wal_lsn" in query else []
        return type("Cursor", (), {"fetchone": lambda _self: rows[0] if rows else None})()


def test_a_missing_slot_stops_a_leaves_first_migration(tmp_path: Path) -> None:
    with pytest.raises(ApplyError, match="slot sub_x is not on p1"):
        _wait_confirmed(_Provider(), "p1", "sub_x")  # type: ignore[arg-type]
