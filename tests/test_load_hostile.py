"""A desired state written by an attacker: loading is bounded and total, every problem is file:line:column, no secret printed."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import gitops
from reconciler.errors import LoadError
from reconciler.load import load_desired_state, load_desired_texts
from reconciler.load_input import MAX_DEPTH, MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES

TOPOLOGY = """\
version: 1
levels: [district, region]
nodes:
  region:
    level: region
    dsn: "host=10.0.0.1 dbname=slm user=replicator"
  district_a:
    level: district
    upstream: region
    dsn: "host=10.0.0.2 dbname=slm user=replicator"
"""
SETS = """\
replication_sets:
  approved:
    tables:
      public.technology:
        row_filter: "approved"
        columns: [id, approved]
"""
PROBLEM_LINE = re.compile(r"error: [^\n]+:\d+:\d+: [^\n]+")


def desired(tmp_path: Path, topology: str = TOPOLOGY, sets: str = SETS) -> Path:
    directory = tmp_path / "ds"
    directory.mkdir(exist_ok=True)
    (directory / "topology.yaml").write_text(topology)
    (directory / "sets.yaml").write_text(sets)
    return directory


def validate(directory: Path, timeout: float = 30) -> str:
    """`reconcile validate` in a subprocess: exit 1, no traceback, every error line is file:line:column: message."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "-d", str(directory)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert time.monotonic() - started < timeout
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert lines and lines[-1].endswith("problem(s); nothing was touched."), result.stderr
    for line in lines[:-1]:
        assert PROBLEM_LINE.fullmatch(line), line
    return result.stderr


def only_problem(files: dict[str, str]) -> str:
    with pytest.raises(LoadError) as info:
        load_desired_texts(files, origin="ds")
    assert len(info.value.problems) == 1, info.value.problems
    return str(info.value.problems[0])


# -- the directory itself ---------------------------------------------------------------


def test_fifo_named_yaml_is_refused_without_blocking(tmp_path: Path) -> None:
    directory = desired(tmp_path)
    os.mkfifo(directory / "x.yaml")  # nobody ever writes to it: opening it for reading would block
    out = validate(directory, timeout=20)
    assert f"{directory}/x.yaml:1:1: not a regular file (a FIFO)" in out


def test_directory_named_yaml_is_refused(tmp_path: Path) -> None:
    directory = desired(tmp_path)
    (directory / "x.yaml").mkdir()
    out = validate(directory)
    assert f"{directory}/x.yaml:1:1: not a regular file (a directory)" in out


def test_dangling_symlink_is_refused(tmp_path: Path) -> None:
    directory = desired(tmp_path)
    os.symlink("user@host.12345:1700000000", directory / "nodes.yaml")
    out = validate(directory)
    assert f"{directory}/nodes.yaml:1:1: not a regular file (a symbolic link to nothing)" in out


def test_hidden_files_are_left_out_like_a_shell_glob(tmp_path: Path) -> None:
    # An editor's lock file (Emacs: a link to nothing) and backup while topology.yaml is edited.
    directory = desired(tmp_path)
    os.symlink("user@host.12345:1700000000", directory / ".#topology.yaml")
    (directory / ".topology.yaml").write_text("version: [broken\n")
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "-d", str(directory)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ".topology.yaml" not in result.stdout + result.stderr


def test_symlink_to_a_file_elsewhere_is_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "operator-secrets.yaml"
    outside.write_text("monitoring: {max_lag_seconds: 1}\n")
    directory = desired(tmp_path)
    os.symlink(outside, directory / "monitoring.yaml")
    out = validate(directory)
    assert f"{directory}/monitoring.yaml:1:1: not a regular file (a symbolic link)" in out


def test_socket_named_yaml_is_refused(tmp_path: Path) -> None:
    directory = desired(tmp_path)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(directory / "s.yaml"))
        out = validate(directory)
    assert f"{directory}/s.yaml:1:1: not a regular file (a socket)" in out


def test_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    directory = desired(tmp_path)
    (directory / "big.yaml").write_text("#" * MAX_FILE_BYTES + "\n")
    out = validate(directory)
    assert f"{directory}/big.yaml:1:1: file is {MAX_FILE_BYTES + 1} bytes; a desired-state file holds at most" in out


def test_directory_over_the_total_limit(tmp_path: Path) -> None:
    directory = desired(tmp_path)
    count = MAX_TOTAL_BYTES // (MAX_FILE_BYTES - 1) + 1
    for i in range(count):
        (directory / f"pad{i}.yaml").write_text("#" * (MAX_FILE_BYTES - 2) + "\n")
    out = validate(directory)
    assert f"error: {directory}:1:1: the *.yaml files hold" in out


def test_too_many_files(tmp_path: Path) -> None:
    directory = desired(tmp_path)
    for i in range(MAX_FILES):
        (directory / f"empty{i}.yaml").write_text("")
    out = validate(directory)
    assert f"error: {directory}:1:1: more than {MAX_FILES} *.yaml files" in out


def test_not_utf8_names_the_place(tmp_path: Path) -> None:
    directory = desired(tmp_path)
    (directory / "sets.yaml").write_bytes(b"replication_sets:\n  \xff: {}\n")
    out = validate(directory)
    assert f"{directory}/sets.yaml:2:3: file is not UTF-8 text" in out


def test_plan_refuses_before_contacting_anything(tmp_path: Path) -> None:
    directory = desired(tmp_path)
    os.mkfifo(directory / "x.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", "-d", str(directory)], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{directory}/x.yaml:1:1: not a regular file (a FIFO)" in result.stderr


def test_git_revision_obeys_the_same_rules(tmp_path: Path) -> None:
    """In git: a symlink blob is refused (never resolved), a tree named *.yaml too, a big blob is not read."""
    repo = git.Repo.init(tmp_path / "repo")
    root = Path(str(repo.working_tree_dir))
    directory = desired(root)
    (root / "outside.yaml").write_text("monitoring: {max_lag_seconds: 1}\n")
    os.symlink("../outside.yaml", directory / "monitoring.yaml")
    (directory / "x.yaml").mkdir()
    (directory / "x.yaml" / "inner.yaml").write_text("version: 1\n")
    (directory / "big.yaml").write_text("#" * MAX_FILE_BYTES + "\n")
    (directory / "latin1.yaml").write_bytes(b"# caf\xe9\n")
    repo.index.add(["outside.yaml", "ds/topology.yaml", "ds/sets.yaml", "ds/monitoring.yaml",
                    "ds/x.yaml/inner.yaml", "ds/big.yaml", "ds/latin1.yaml"])  # fmt: skip
    actor = git.Actor("t", "t@example.org")
    repo.index.commit("hostile", author=actor, committer=actor)
    repo.close()
    with pytest.raises(LoadError) as info:
        gitops.load_revision(directory, "HEAD")
    assert sorted(str(p) for p in info.value.problems) == [
        f"ds/big.yaml:1:1: file is {MAX_FILE_BYTES + 1} bytes; a desired-state file holds at most "
        f"{MAX_FILE_BYTES} (1 MiB)",
        "ds/latin1.yaml:1:6: file is not UTF-8 text",
        "ds/monitoring.yaml:1:1: not a regular file (a symbolic link in git); links are never followed, so that "
        "a merge request cannot make the reconciler read a file elsewhere",
        "ds/x.yaml:1:1: not a regular file (a directory); only regular *.yaml files are read",
    ]


# -- YAML that costs more than its size -------------------------------------------------


@pytest.mark.parametrize("depth", [5_000, 100_000])
@pytest.mark.parametrize("style", ["flow list", "flow map", "block list", "block map"])
def test_deep_nesting_is_refused_before_anything_recurses(tmp_path: Path, depth: int, style: str) -> None:
    if style == "flow list":
        value = "[" * depth + "]" * depth
    elif style == "flow map":
        value = "{a: " * depth + "1" + "}" * depth
    elif style == "block list":
        value = "\n" + "- " * depth + "x"
    else:  # each level one space deeper: 100,000 levels would be 5 GB, so the limit cuts it short
        levels = min(depth, 1400)
        value = "".join("\n" + " " * (i + 1) + "a:" for i in range(levels)) + " 1"
    directory = desired(tmp_path, TOPOLOGY + f"monitoring: {value}\n")
    out = validate(directory)
    assert f"lists and mappings are nested more than {MAX_DEPTH} deep" in out


def bomb(levels: int) -> str:
    """Each anchor repeats the one before nine times: 9**levels operations from a few lines."""
    lines = ["x_bomb:", "  - &a0 [insert, update]"]
    for i in range(1, levels):
        lines.append(f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_within_a_second(tmp_path: Path) -> None:
    sets = SETS.replace("    tables:", "    replicate: *a8\n    tables:")
    directory = desired(tmp_path, sets=bomb(9) + sets)
    started = time.monotonic()
    with pytest.raises(LoadError) as info:
        load_desired_state(directory)
    assert time.monotonic() - started < 1
    assert "anchors (&name) and aliases (*name) are not allowed" in str(info.value)
    validate(directory)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("version: !!int 1\n", "YAML tags"),
        ("%YAML 1.1\n---\nversion: 1\n", "YAML directives"),
        ("version: 1\n---\nversion: 1\n", "only one YAML document"),
        ("? [version]\n: 1\n", "a key must be a plain value"),
        ("<<: {version: 1}\n", "merge keys"),
        ('version: "1\\0"\n', "U+0000"),
        ('version: "\\ud800"\n', "U+D800"),
        ("version: 1\x07\n", "U+0007"),
        ("version: 2024-13-45\n", "cannot be converted"),
        ("version: " + "9" * 5000 + "\n", "cannot be converted"),
        ("version: [1\n", "YAML syntax error"),
    ],
)
def test_yaml_features_the_desired_state_refuses(text: str, words: str) -> None:
    found = only_problem({"ds/x.yaml": text})
    assert re.match(r"ds/x\.yaml:\d+:\d+: ", found), found
    assert words in found, found


# -- secrets in messages ------------------------------------------------------------------


def test_duplicate_dsn_key_names_key_and_lines_never_the_password(tmp_path: Path) -> None:
    topology = TOPOLOGY.replace(
        '    upstream: region\n', '    upstream: region\n    dsn: "host=10.0.0.3 dbname=slm password=Hunter2Dup"\n'
    )
    out = validate(desired(tmp_path, topology))
    assert "Hunter2Dup" not in out
    assert "/topology.yaml:11:5: key 'dsn' is given twice in this mapping (first on line 10)" in out


def test_duplicate_by_value_is_refused_without_quoting() -> None:
    found = only_problem({"ds/x.yaml": "version: 1\nmonitoring: {1: Secret1, 1.0: Secret2}\n"})
    assert "given twice" in found and "Secret" not in found


@pytest.mark.parametrize(
    "value",
    [
        '["host=h password=TokenList"]',
        "{host: h, password: TokenMap}",
        "12345678901234567890",
        "true",
        "'host=h password=TokenLibpq'\n  x: 1",  # a syntax error next to it
        '"host=h password=\'TokenQuote"',  # libpq: unterminated quote
        '"postgresql://u:Token Space@h/db"',  # libpq: "unexpected spaces found in ..."
        '"postgresql://h/db?password=Token%00Nul"',  # libpq: "forbidden value %00 in ..."
        # Otherwise valid: libpq stops at the NUL and would see no password at all.
        '"host=10.0.0.2 dbname=slm user=replicator \\0password=TokenNul"',
        '"host=10.0.0.2 dbname=slm user=replicator\\x01password=TokenCtl"',
    ],
)
def test_messages_never_quote_a_dsn(tmp_path: Path, value: str) -> None:
    topology = TOPOLOGY.replace('"host=10.0.0.2 dbname=slm user=replicator"', value)
    out = validate(desired(tmp_path, topology))
    assert "Token" not in out, out


@pytest.mark.parametrize(
    ("yaml_text", "words"),
    [
        (TOPOLOGY.replace("  district_a:", '  "district_a\\n":') + SETS, "node name 'district_a\\n' is invalid"),
        (TOPOLOGY.replace("[district, region]", '["district\\n", region]') + SETS, "level 'district\\n': use"),
        (TOPOLOGY + SETS.replace("  approved:", '  "approved\\n":'), "replication set name 'approved\\n' is invalid"),
        (
            TOPOLOGY + SETS.replace("      public.technology:", '      "public.technology\\n":'),
            "table 'public.technology\\n' is not a valid schema.table name",
        ),
        (TOPOLOGY + SETS.replace("[id, approved]", '[id, "approved\\n"]'), "'approved\\n' is not a column name"),
    ],
)
def test_names_with_a_trailing_newline_are_refused(yaml_text: str, words: str) -> None:
    """`$` matches before a final newline: every name pattern ends with \\Z. The newline is shown escaped."""
    with pytest.raises(LoadError) as info:
        load_desired_texts({"ds/x.yaml": yaml_text}, origin="ds")
    assert words in str(info.value), str(info.value)
    assert all("\n" not in str(p) for p in info.value.problems)


# -- never anything but LoadError, within a bound -------------------------------------

YAMLISH = st.sampled_from(
    ["[", "]", "{", "}", ":", ": ", "- ", "-", ",", "? ", "&a ", "*a", "!!str ", "!x ", "'", '"', "\\", "\n",
     "\n  ", "  ", "\t", "#", "%YAML 1.1\n", "---\n", "...\n", "<<: ", "|\n", ">-\n", "~", "null", "1", "1.5e3",
     "0x1F", "2024-13-45", "version", "nodes", "levels", "dsn", "level", "upstream", "replication_sets",
     "tables", "columns", "row_filter", "public.t", "host=h password=x", "\\0", "\\ud800", "\x00", "\u202e", "é"]
)  # fmt: skip
HOSTILE_TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(YAMLISH, max_size=80).map("".join),
    st.tuples(st.integers(0, len(TOPOLOGY + SETS)), st.lists(YAMLISH, max_size=20).map("".join)).map(
        lambda cut: (TOPOLOGY + SETS)[: cut[0]] + cut[1] + (TOPOLOGY + SETS)[cut[0] :]
    ),
)


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(text=HOSTILE_TEXT, raw=st.binary(max_size=200), as_bytes=st.booleans())
def test_any_input_is_a_load_error_or_a_state(text: str, raw: bytes, as_bytes: bool) -> None:
    files: dict[str, str | bytes] = {"ds/a.yaml": raw if as_bytes else text, "ds/b.yaml": text}
    try:
        load_desired_texts(files, origin="ds")
    except LoadError as exc:
        for problem in exc.problems:
            assert problem.location.line >= 1 and problem.location.column >= 1
            assert problem.message and "\x00" not in problem.message
