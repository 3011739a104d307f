"""The read-only role of deploy/roles/reconcile-review.sql is enough for plan and review, and can write nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from ruamel.yaml import YAML

from tests.support import cli

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parent.parent
ROLE_SQL = REPO / "deploy" / "roles" / "reconcile-review.sql"
SMALL = {"nation": None, "region": "nation", "d1": "region"}


def grant(net: Any, node: str, role: str) -> None:
    """Run the shipped role script with psql on the node's database, as the superuser."""
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"role={role}", "-d", net.dsn(node), "-f", str(ROLE_SQL)],
        check=True,
        capture_output=True,
        text=True,
    )


def as_role(net: Any, role: str) -> None:
    """Give every node an admin_dsn that logs in as `role`."""
    topology = net.dir / "topology.yaml"
    yaml = YAML(typ="safe")
    data = yaml.load(topology.read_text())
    for decl in data["nodes"].values():
        decl["admin_dsn"] = decl["dsn"].replace("user=postgres", f"user={role}")
    with topology.open("w") as out:
        yaml.dump(data, out)


def test_review_role_plans_a_converged_network_and_cannot_write(network: Any) -> None:
    net = network(SMALL)
    assert cli("apply", "-d", str(net.dir), "--auto-approve").exit_code == 0
    role = f"review_{net.dir.parent.name[-6:].lower()}".replace("-", "_")
    for node in SMALL:
        grant(net, node, role)
    as_role(net, role)

    result = cli("plan", "-d", str(net.dir), "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "No changes." in result.stdout
    status = cli("status", "-d", str(net.dir))
    assert "permission denied" not in status.output, status.output

    dsn = net.dsn("d1").replace("user=postgres", f"user={role}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in (
            "INSERT INTO public.technology (id, title, approved, district) VALUES (gen_random_uuid(), 'x', true, 'd1')",
            "SELECT pglogical.drop_node('d1')",
            "SELECT pg_catalog.pg_drop_replication_slot('nothing')",
            "COPY (SELECT 1) TO PROGRAM 'true'",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
