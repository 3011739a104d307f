"""JSON Schemas in schema/: the desired state's is current and agrees with the loader; plan, status and
verify JSON from real runs validate against theirs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.errors import LoadError
from reconciler.load import load_desired_texts
from reconciler.schema import desired_state_schema_text

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schema"
EXAMPLES = sorted((ROOT / "desired-state").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../schema/desired-state.schema.json"


def validator(name: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def errors(name: str, document: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator(name).iter_errors(document)]


def test_desired_state_schema_is_current() -> None:
    written = (SCHEMAS / "desired-state.schema.json").read_text()
    assert written == desired_state_schema_text(), (
        "schema/desired-state.schema.json is stale: run `.venv/bin/python -m tools.write_schema`"
    )


def test_every_example_file_validates_on_its_own_and_names_the_schema() -> None:
    assert len(EXAMPLES) >= 2  # a split desired state: each file holds some top-level keys
    for path in EXAMPLES:
        assert MODELINE in path.read_text().splitlines(), path
        assert errors("desired-state.schema.json", YAML(typ="safe").load(path.read_text())) == [], path


TOPOLOGY = """version: 1
levels: [district, region]
nodes:
  region: {level: region, dsn: "host=127.0.0.1 port=1 dbname=r user=postgres"}
  d1: {level: district, upstream: region, dsn: "host=127.0.0.1 port=2 dbname=d1 user=postgres",
       app_url: "https://d1.example.org/health"}
replication_sets:
  approved: {tables: {public.technology: {row_filter: approved}}}
"""


@pytest.mark.parametrize(
    ("monitoring", "valid"),
    [
        ("{max_retained_wal: 5GB, max_lag_bytes: 512MB}", True),
        ("{max_retained_wal: 1073741824, max_lag_seconds: 60}", True),
        ("{max_retained_wal: 5 parsecs}", False),
        ("{max_retained_wal: -1}", False),
        ("{warn_fraction: 2}", False),
        ("{max_lag: 5}", False),  # unknown key
    ],
)
def test_schema_and_loader_agree(monitoring: str, valid: bool) -> None:
    text = TOPOLOGY + f"monitoring: {monitoring}\n"
    document = YAML(typ="safe").load(text)
    assert (errors("desired-state.schema.json", document) == []) is valid
    try:
        load_desired_texts({"topology.yaml": text}, "ds")
        loaded = True
    except LoadError:
        loaded = False
    assert loaded is valid


def test_schema_refuses_a_mistyped_node() -> None:
    document = YAML(typ="safe").load(TOPOLOGY.replace("upstream: region", "upstrem: region"))
    assert any("upstrem" in e for e in errors("desired-state.schema.json", document))


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_status_json_of_unreachable_nodes_validates(tmp_path: Path) -> None:
    (tmp_path / "topology.yaml").write_text(TOPOLOGY)
    result = cli("status", "-d", str(tmp_path), "--format", "json", "--timeout", "1", "--no-drift")
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    assert document["apps"] and not document["nodes"][0]["reachable"]
    assert errors("status.v1.schema.json", document) == []
    broken = {**document, "exit_code": 7, "format_version": 2}
    assert len(errors("status.v1.schema.json", broken)) == 2


def test_status_json_names_each_nodes_migration_and_the_release(tmp_path: Path) -> None:
    (tmp_path / "topology.yaml").write_text(TOPOLOGY)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_add.sql").write_text("ALTER TABLE public.technology ADD COLUMN s text;\n")
    result = cli("status", "-d", str(tmp_path), "--format", "json", "--timeout", "1", "--no-drift")
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    assert [n["schema_migration"] for n in document["nodes"]] == [None, None]  # not read
    assert document["release"] == {
        "migration": 1,
        "nodes": 2,
        "at_release": 0,
        "summary": "release 0001: 0 of 2 nodes; the rest wait on region (unreachable, 2 nodes)",
    }
    assert errors("status.v1.schema.json", document) == []
    del document["nodes"][0]["schema_migration"]
    document["release"]["at_release"] = -1
    assert len(errors("status.v1.schema.json", document)) == 2


@pytest.mark.server
def test_plan_status_and_verify_json_of_a_real_network_validate(network: Any) -> None:
    net = network({"region": None, "d1": "region", "d2": "region"}, levels=("district", "region"))
    plan = cli("plan", "-d", str(net.dir), "--format", "json")
    assert plan.exit_code == 0, plan.output
    document = json.loads(plan.stdout)
    assert document["actions"] and document["fingerprints"]
    assert errors("plan.v1.schema.json", document) == []
    net.execute(
        "d1",
        "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'x', 'd1', true)",
        (str(uuid.uuid4()),),
    )
    verify = cli("verify", "-d", str(net.dir), "--table", "technology", "--format", "json")
    assert verify.exit_code == 2, verify.output
    document = json.loads(verify.stdout)
    assert document["summary"]["missing"] == 1
    assert errors("verify.v1.schema.json", document) == []
    status = cli("status", "-d", str(net.dir), "--format", "json", "--timeout", "5")
    assert status.exit_code == 2, status.output  # nothing applied: subscriptions missing
    document = json.loads(status.stdout)
    assert {e["status"] for e in document["edges"]} == {"missing"}
    assert errors("status.v1.schema.json", document) == []
