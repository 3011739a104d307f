"""Desired-state loading: the example is valid; every bad input exits 1 naming file:line:column."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.errors import LoadError
from reconciler.load import load_desired_state

EXAMPLE = Path(__file__).resolve().parent.parent / "desired-state"

TOPOLOGY = """\
version: 1
levels: [district, region, nation]
nodes:
  nation:
    level: nation
    dsn: "host=10.1.0.1 port=5432 dbname=slm user=replicator"
  region_east:
    level: region
    upstream: nation
    dsn: "host=10.2.0.1 port=5432 dbname=slm user=replicator"
  district_a:
    level: district
    upstream: region_east
    dsn: "host=10.3.0.1 port=5432 dbname=slm user=replicator"
"""

SETS = """\
replication_sets:
  approved:
    tables:
      public.technology:
        row_filter: "approved"
      public.approach:
        row_filter: "status = 'approved'"
        columns: [id, title, status]
"""


def write(tmp_path: Path, topology: str = TOPOLOGY, sets: str = SETS, **extra: str) -> Path:
    (tmp_path / "topology.yaml").write_text(topology)
    (tmp_path / "sets.yaml").write_text(sets)
    for name, text in extra.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


def problems(directory: Path) -> list[str]:
    with pytest.raises(LoadError) as info:
        load_desired_state(directory)
    return [str(p) for p in info.value.problems]


def only_problem(directory: Path) -> str:
    found = problems(directory)
    assert len(found) == 1, found
    return found[0]


def test_example_is_valid() -> None:
    state = load_desired_state(EXAMPLE)
    assert len(state.nodes) == 7
    assert state.levels == ("district", "region", "nation")
    assert state.monitoring.max_retained_wal == 5 * 1024**3


def test_validate_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", "-d", str(EXAMPLE)])
    assert ok.exit_code == 0, ok.output
    bad = write(tmp_path, TOPOLOGY.replace("upstream: nation", "upstrem: nation"))
    result = runner.invoke(app, ["validate", "-d", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}/topology.yaml:9:5" in result.output
    assert "nothing was touched" in result.output


def test_reconcile_dir_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILE_DIR", str(write(tmp_path)))
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "3 nodes, 2 edges" in result.output


def test_yaml_syntax_error(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, sets="replication_sets:\n  approved: [a\n  b: 1\n"))
    assert re.match(rf"{tmp_path}/sets.yaml:3:\d+: YAML syntax error", found), found


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, TOPOLOGY.replace("upstream: nation", "upstrem: nation")))
    assert found == (
        f"{tmp_path}/topology.yaml:9:5: nodes.region_east.upstrem: unknown key 'upstrem' "
        "(did you mean 'upstream'?)"
    )


@pytest.mark.parametrize(
    ("yaml_text", "line"),
    [
        ("version: 1\nmonitoring:\n  max_lag: 3\n", 3),
        ("version: 1\ncolour: blue\n", 2),
    ],
)
def test_unknown_keys_anywhere(tmp_path: Path, yaml_text: str, line: int) -> None:
    topology = TOPOLOGY.replace("version: 1\n", "")
    found = only_problem(write(tmp_path, topology, extra=yaml_text))
    assert found.startswith(f"{tmp_path}/extra.yaml:{line}:")
    assert "unknown key" in found


def test_node_defined_in_two_files(tmp_path: Path) -> None:
    other = 'nodes:\n  district_b:\n    level: district\n    upstream: region_east\n    dsn: "dbname=b"\n'
    found = only_problem(write(tmp_path, zz=other))
    assert found == (
        f"{tmp_path}/zz.yaml:1:1: top-level key 'nodes' is also defined in {tmp_path}/topology.yaml:3:1"
    )


def test_upstream_does_not_exist(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, TOPOLOGY.replace("upstream: region_east", "upstream: region_est")))
    assert found.startswith(f"{tmp_path}/topology.yaml:13:15: ")
    assert "upstream 'region_est' does not exist (did you mean 'region_east'?)" in found


def test_cycle(tmp_path: Path) -> None:
    topology = TOPOLOGY.replace(
        "  nation:\n    level: nation\n",
        "  nation:\n    level: nation\n    upstream: district_a\n",
    )
    found = problems(write(tmp_path, topology))
    assert any("upstream cycle: district_a -> region_east -> nation -> district_a" in p for p in found), found
    assert all(p.startswith(f"{tmp_path}/topology.yaml:") for p in found)


def test_self_reference(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, TOPOLOGY.replace("upstream: region_east", "upstream: district_a")))
    assert found == f"{tmp_path}/topology.yaml:13:15: node 'district_a' names itself as its upstream"


def test_skipped_level(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, TOPOLOGY.replace("upstream: region_east", "upstream: nation")))
    assert found.startswith(f"{tmp_path}/topology.yaml:13:15: ")
    assert "skips a level; the upstream must be at level region" in found


def test_upstream_on_same_level(tmp_path: Path) -> None:
    topology = TOPOLOGY + (
        '  district_b:\n    level: district\n    upstream: district_a\n    dsn: "host=10.3.0.2 dbname=slm"\n'
    )
    found = only_problem(write(tmp_path, topology))
    assert found.startswith(f"{tmp_path}/topology.yaml:17:15: ")
    assert "is on the same level" in found


def test_top_level_node_with_upstream(tmp_path: Path) -> None:
    topology = (
        TOPOLOGY
        + '  nation_b:\n    level: nation\n    upstream: nation\n    dsn: "host=10.9.0.1 dbname=slm"\n'
    )
    found = only_problem(write(tmp_path, topology))
    assert found.startswith(f"{tmp_path}/topology.yaml:17:15: ")
    assert "top level 'nation' and cannot have an upstream" in found


def test_non_top_node_without_upstream(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, TOPOLOGY.replace("    upstream: region_east\n", "")))
    assert found.startswith(f"{tmp_path}/topology.yaml:11:3: ")
    assert "needs an upstream at level region" in found


@pytest.mark.parametrize(
    "bad_name",
    ["District_A", "district-a", "d" * 41, "1district"],
)
def test_bad_node_names(tmp_path: Path, bad_name: str) -> None:
    topology = TOPOLOGY.replace("  district_a:", f"  {bad_name}:")
    found = only_problem(write(tmp_path, topology))
    assert found.startswith(f"{tmp_path}/topology.yaml:11:3: node name '{bad_name}'")


def test_bad_set_name(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, sets=SETS.replace("  approved:", "  Approved-Set:")))
    assert found.startswith(f"{tmp_path}/sets.yaml:2:3: replication set name 'Approved-Set'")


def test_reserved_set_name(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, sets=SETS.replace("  approved:", "  default:")))
    assert "reserved by pglogical" in found


@pytest.mark.parametrize(
    "dsn",
    [
        "host=10.3.0.1 dbname=slm user=replicator password=hunter2",
        "postgresql://replicator:hunter2@10.3.0.1:5432/slm",
        "host=10.3.0.1 dbname=slm sslpassword=hunter2",
        "postgresql://10.3.0.1/slm?sslpassword=hunter2",
    ],
)
def test_password_in_dsn(tmp_path: Path, dsn: str) -> None:
    topology = TOPOLOGY.replace('"host=10.3.0.1 port=5432 dbname=slm user=replicator"', f'"{dsn}"')
    found = only_problem(write(tmp_path, topology))
    assert found.startswith(f"{tmp_path}/topology.yaml:14:10: node 'district_a': dsn contains a ")
    assert "password; secrets never live in git" in found
    assert "hunter2" not in found


def test_password_in_admin_dsn(tmp_path: Path) -> None:
    topology = TOPOLOGY.replace(
        "    upstream: region_east\n",
        '    upstream: region_east\n    admin_dsn: "host=vpn dbname=slm password=hunter2"\n',
    )
    found = only_problem(write(tmp_path, topology))
    assert "admin_dsn contains a password" in found
    assert "hunter2" not in found


def test_unparsable_dsn(tmp_path: Path) -> None:
    topology = TOPOLOGY.replace(
        '"host=10.3.0.1 port=5432 dbname=slm user=replicator"', '"host=10.3.0.1 port"'
    )
    found = only_problem(write(tmp_path, topology))
    assert found.startswith(
        f"{tmp_path}/topology.yaml:14:10: node 'district_a': dsn is not a valid connection string"
    )


@pytest.mark.parametrize(
    ("row_filter", "words"),
    [
        ("approved; drop table x", "contains ';'"),
        ("id in (select id from other)", "must not contain a subquery"),
        ("drop table x", "not one valid SQL expression"),
        ("garbage !!! (", "not one valid SQL expression"),
        ("approved) OR (true", "not one valid SQL expression"),
        ("'yes'", "constant that is not boolean"),
        ("title || 'x'", "uses the operator '||'"),
        ("", "is empty"),
        # Not a predicate that cannot fail at run time: refused offline, with why.
        ("1/(n-n) > 0", "the operator '/': arithmetic"),
        ("now() > created_at", "calls now(): only these built-in functions are allowed"),
        ("n::int > 1", "casts to int4"),
        ("xmin = '1'", "system column xmin"),
        ("title LIKE 'a\\\\'", "ends with a backslash that escapes nothing"),
        # The payload that ran COPY ... TO PROGRAM through the probe when a
        # node's session had standard_conforming_strings off: two constants.
        (
            "'\\\\' = $x$' = '' )) NOT VALID; COPY (SELECT current_user) TO PROGRAM 'cat > pwned.txt';"
            " ALTER TABLE pg_temp.reconcile_probe_1 ADD CONSTRAINT q CHECK ((true --$x$",
            "reads no column of the table",
        ),
    ],
)
def test_bad_row_filters(tmp_path: Path, row_filter: str, words: str) -> None:
    sets = SETS.replace('row_filter: "approved"', f'row_filter: "{row_filter}"')
    found = only_problem(write(tmp_path, sets=sets))
    assert found.startswith(f"{tmp_path}/sets.yaml:5:21: table 'public.technology': "), found
    assert words in found


def test_table_without_schema(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, sets=SETS.replace("public.technology:", "technology:")))
    assert found == (
        f"{tmp_path}/sets.yaml:4:7: table 'technology' must be schema-qualified, e.g. public.technology"
    )


def test_empty_replication_set(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, sets="replication_sets:\n  approved:\n    tables: {}\n"))
    assert found == f"{tmp_path}/sets.yaml:3:13: replication set 'approved' has no tables"


def test_no_replication_sets(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, sets="replication_sets: {}\n"))
    assert "at least one set" in found


def test_two_nodes_same_dsn(tmp_path: Path) -> None:
    topology = TOPOLOGY + (
        "  district_b:\n    level: district\n    upstream: region_east\n"
        '    dsn: "postgresql://replicator@10.3.0.1:5432/slm"\n'
    )
    found = only_problem(write(tmp_path, topology))
    assert found.startswith(
        f"{tmp_path}/topology.yaml:18:10: node 'district_b': dsn reaches the same database as node 'district_a'"
    )


def test_different_levels_same_server(tmp_path: Path) -> None:
    topology = TOPOLOGY.replace("host=10.2.0.1 port=5432 dbname=slm", "host=10.3.0.1 port=5432 dbname=region")
    found = only_problem(write(tmp_path, topology))
    assert found.startswith(f"{tmp_path}/topology.yaml:")
    assert "node 'region_east' (level region) is on the same PostgreSQL server 10.3.0.1:5432" in found
    assert "'district_a' (level district)" in found


def test_loopback_spellings_are_one_server(tmp_path: Path) -> None:
    topology = TOPOLOGY.replace(
        "host=10.2.0.1 port=5432 dbname=slm", "host=localhost port=6000 dbname=r"
    ).replace("host=10.3.0.1 port=5432", "host=127.0.0.1 port=6000")
    assert "same PostgreSQL server localhost:6000" in only_problem(write(tmp_path, topology))


def test_same_level_may_share_a_server(tmp_path: Path) -> None:
    topology = TOPOLOGY + (
        "  district_b:\n    level: district\n    upstream: region_east\n"
        '    dsn: "host=10.3.0.1 port=5432 dbname=other user=replicator"\n'
    )
    assert len(load_desired_state(write(tmp_path, topology)).nodes) == 4


def test_missing_version_and_unknown_version(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, TOPOLOGY.replace("version: 1\n", "version: 7\n")))
    assert found.startswith(f"{tmp_path}/topology.yaml:1:10: version:")
    found = only_problem(write(tmp_path, TOPOLOGY.replace("version: 1\n", "")))
    assert "version: required key is missing" in found


def test_bad_size(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, extra="monitoring:\n  max_retained_wal: lots\n"))
    assert found.startswith(f"{tmp_path}/extra.yaml:2:21: monitoring.max_retained_wal")


def test_column_list_rules(tmp_path: Path) -> None:
    found = only_problem(write(tmp_path, sets=SETS.replace("[id, title, status]", "[id, title, id]")))
    assert "a column is listed twice" in found


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    topology = TOPOLOGY.replace("upstream: region_east", "upstream: nowhere").replace(
        'dbname=slm user=replicator"\n  region', 'dbname=slm password=x"\n  region'
    )
    sets = SETS.replace("public.approach:", "approach:")
    found = problems(write(tmp_path, topology, sets))
    assert len(found) == 3, found
    # Sorted by file, then line and column as numbers.
    assert [p.split(":")[:2] for p in found] == [
        [f"{tmp_path}/sets.yaml", "6"],
        [f"{tmp_path}/topology.yaml", "6"],
        [f"{tmp_path}/topology.yaml", "13"],
    ]


def test_four_levels(tmp_path: Path) -> None:
    topology = """\
version: 1
levels: [woreda, zone, region, federal]
nodes:
  federal: {level: federal, dsn: "host=10.0.0.1 dbname=f"}
  amhara: {level: region, upstream: federal, dsn: "host=10.0.0.2 dbname=r"}
  north_gondar: {level: zone, upstream: amhara, dsn: "host=10.0.0.3 dbname=z"}
  dabat: {level: woreda, upstream: north_gondar, dsn: "host=10.0.0.4 dbname=w"}
"""
    state = load_desired_state(write(tmp_path, topology))
    assert state.levels[-1] == "federal"
    bad = topology.replace("upstream: north_gondar", "upstream: amhara")
    assert "skips a level" in only_problem(write(tmp_path, bad))


def test_level_settings_and_node_override(tmp_path: Path) -> None:
    extra = "level_settings:\n  district:\n    max_slot_wal_keep_size: 10GB\n"
    topology = TOPOLOGY.replace(
        "    upstream: nation\n", "    upstream: nation\n    max_slot_wal_keep_size: 2GB\n"
    )
    state = load_desired_state(write(tmp_path, topology, extra=extra))
    assert state.max_slot_wal_keep_size("district_a") == "10GB"
    assert state.max_slot_wal_keep_size("region_east") == "2GB"
    assert state.max_slot_wal_keep_size("nation") is None


def test_level_settings_errors(tmp_path: Path) -> None:
    extra = "level_settings:\n  distric:\n    max_slot_wal_keep_size: lots\n"
    found = problems(write(tmp_path, extra=extra))
    assert any(p.startswith(f"{tmp_path}/extra.yaml:2:3: level_settings: 'distric'") for p in found), found
    assert any("extra.yaml:3:29: level 'distric': not a size" in p for p in found), found


def test_one_wal_keep_size_per_server(tmp_path: Path) -> None:
    topology = TOPOLOGY + (
        "  district_b:\n    level: district\n    upstream: region_east\n"
        '    dsn: "host=10.3.0.1 port=5432 dbname=other"\n    max_slot_wal_keep_size: 1GB\n'
    )
    extra = "level_settings:\n  district:\n    max_slot_wal_keep_size: 10GB\n"
    found = only_problem(write(tmp_path, topology, extra=extra))
    assert found.startswith(f"{tmp_path}/topology.yaml:19:29: ")
    assert "declare different max_slot_wal_keep_size (district_a=10GB, district_b=1GB)" in found
    assert "it is one setting per server" in found
