"""Alert rules and scrape files of deploy/prometheus: promtool unit tests, each alert seen firing and silent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

PROMETHEUS = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.test.yml"))
SCRAPE_FILES = sorted(PROMETHEUS.glob("scrape-*.yml"))


def _load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def rule_files() -> list[Path]:
    """Every file of deploy/prometheus holding rule groups."""
    return [p for p in sorted(PROMETHEUS.glob("*.yml")) if "groups" in (_load(p) or {})]


def alert_names() -> set[str]:
    return {r["alert"] for p in rule_files() for g in _load(p)["groups"] for r in g["rules"] if "alert" in r}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool not installed (Debian package `prometheus`; `make install` as root installs it)"
        )
    return found


def test_every_alert_has_a_case_firing_and_a_case_silent() -> None:
    """Pure check of the test files (runs without promtool): no alert is left untested either way."""
    assert RULE_TESTS, "no promtool test files in deploy/prometheus/tests"
    firing: set[str] = set()
    silent: set[str] = set()
    covered_files: set[Path] = set()
    for path in RULE_TESTS:
        spec = _load(path)
        covered_files |= {(path.parent / f).resolve() for f in spec["rule_files"]}
        for case in spec["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    assert {p.resolve() for p in rule_files()} <= covered_files, "a rule file no test loads"
    names = alert_names()
    assert len(names) >= 15
    assert names - firing == set(), "alerts never seen firing"
    assert names - silent == set(), "alerts never seen staying silent"
    assert (firing | silent) - names == set(), "tests of alerts that do not exist"


def test_rules_pass_their_promtool_unit_tests() -> None:
    promtool = _promtool()
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROMETHEUS / "tests",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_and_scrape_files_pass_promtool_check() -> None:
    promtool = _promtool()
    checks = [
        [promtool, "check", "rules", *map(str, rule_files())],
        [promtool, "check", "config", "--syntax-only", *map(str, SCRAPE_FILES)],
    ]
    for command in checks:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_one_scrape_file_per_mode() -> None:
    """The exporter and the textfile collector each have their own file; neither scrapes the other's port."""
    assert [p.name for p in SCRAPE_FILES] == ["scrape-exporter.yml", "scrape-textfile.yml"]
    for path in SCRAPE_FILES:
        targets = [
            target
            for job in _load(path)["scrape_configs"]
            for static in job.get("static_configs", [])
            for target in static["targets"]
        ]
        serving = [t for t in targets if t.endswith(":9847")]
        assert bool(serving) == (path.name == "scrape-exporter.yml"), (path.name, targets)
