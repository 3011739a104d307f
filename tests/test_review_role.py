"""The read-only role of deploy/roles/reconcile-review.sql is enough for plan, status and review, and can write nothing.

The role is chosen by the operator's configuration (`[connect] user`), not
by the desired state: a review job in CI holds that role's password only.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import git
import psycopg
import pytest
from ruamel.yaml import YAML

from tests.support import cli

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parent.parent
ROLE_SQL = REPO / "deploy" / "roles" / "reconcile-review.sql"
SMALL = {"nation": None, "region": "nation", "d1": "region"}
AUTHOR = git.Actor("Review Test", "review@example.org")


def grant(net: Any, node: str, role: str) -> None:
    """Run the shipped role script with psql on the node's database, as the superuser."""
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"role={role}", "-d", net.dsn(node), "-f", str(ROLE_SQL)],
        check=True,
        capture_output=True,
        text=True,
    )


def test_review_role_plans_reviews_and_cannot_write(
    network: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = network(SMALL)
    assert cli("apply", "-d", str(net.dir), "--auto-approve").exit_code == 0
    role = f"review_{net.dir.parent.name[-6:].lower()}".replace("-", "_")
    for node in SMALL:
        grant(net, node, role)
    config = tmp_path / "review.toml"
    config.write_text(f'[connect]\nuser = "{role}"\n')
    monkeypatch.setenv("RECONCILE_CONFIG", str(config))

    result = cli("plan", "-d", str(net.dir), "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "No changes." in result.stdout
    status = cli("status", "-d", str(net.dir))
    assert "permission denied" not in status.output, status.output

    # A merge request that changes a filter: reviewed live, as the role.
    repo = git.Repo.init(net.dir)
    repo.index.add(["topology.yaml", "replication.yaml"])
    repo.index.commit("base", author=AUTHOR, committer=AUTHOR)
    sets = net.dir / "replication.yaml"
    yaml = YAML()
    data = yaml.load(sets.read_text())
    data["replication_sets"]["approved"]["tables"]["public.technology"]["row_filter"] = "approved AND title <> ''"
    with sets.open("w") as out:
        yaml.dump(data, out)
    repo.index.add(["replication.yaml"])
    repo.index.commit("filter", author=AUTHOR, committer=AUTHOR)
    review = cli("review", "-d", str(net.dir), "--base", "HEAD~1", "--timeout", "5")
    assert review.exit_code == 0, review.output
    assert "Live network: every node answered" in review.stdout, review.stdout
    assert "permission denied" not in review.stdout

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


def test_connect_user_replaces_the_dsns_user(network: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the operator's [connect] user the DSN's role logs in; with it, that role, on every node."""
    from reconciler.db import connect

    net = network({"nation": None, "d1": "nation"})
    role = f"other_{net.dir.parent.name[-6:].lower()}".replace("-", "_")
    net.execute("d1", f'CREATE ROLE "{role}" LOGIN')
    try:
        with connect(net.dsn("d1"), timeout=5) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        config = tmp_path / "c.toml"
        config.write_text(f'[connect]\nuser = "{role}"\n')
        monkeypatch.setenv("RECONCILE_CONFIG", str(config))
        with connect(net.dsn("d1"), timeout=5) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)
    finally:
        net.execute("d1", f'DROP ROLE "{role}"')
