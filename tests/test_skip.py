"""`reconcile skip` on real servers, both engines: a poisoned transaction is skipped, recorded, and its rows repaired."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner, Result

from reconciler.cli import app
from reconciler.load import load_desired_state
from tests.support import cli, wait_for

pytestmark = pytest.mark.server

PAIR: dict[str, str | None] = {"region": None, "d1": "region"}


def make_pair(network: Any, engine: str) -> Any:
    net = network(PAIR, levels=("district", "region"))
    if engine != "pglogical":
        path = Path(net.dir) / "topology.yaml"
        yaml = YAML(typ="safe")
        data = yaml.load(path.read_text())
        data["engine"] = engine
        with path.open("w") as out:
            yaml.dump(data, out)
        net.state = load_desired_state(net.dir)
    result = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert result.exit_code == 0, result.output
    return net


def insert(net: Any, node: str, title: str) -> str:
    key = str(uuid.uuid4())
    net.execute(
        node,
        "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, %s, %s, true)",
        (key, title, node),
    )
    return key


def title_at(net: Any, node: str, key: str) -> str | None:
    rows = net.execute(node, "SELECT title FROM public.technology WHERE id = %s", (key,))
    return str(rows[0][0]) if rows else None


def region_edge(net: Any) -> dict[str, Any]:
    result = cli("status", "-d", str(net.dir), "--no-drift", "--format", "json", "--timeout", "5")
    assert result.exit_code in (0, 2, 3), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return next(e for e in document["edges"] if e["subscriber"] == "region")


def skip(net: Any, *extra: str, answer: str | None = None) -> Result:
    args = ["skip", "region", "d1", "-d", str(net.dir), "--timeout", "5", "--wait", "30", *extra]
    return CliRunner().invoke(app, args, input=answer)


@pytest.mark.parametrize("engine", ["pglogical", "native"])
def test_skip_moves_past_a_poisoned_transaction_records_it_and_repairs_its_rows(
    network: Any, engine: str
) -> None:
    net = make_pair(network, engine)
    first = insert(net, "d1", "first")
    wait_for(lambda: title_at(net, "region", first) == "first", "the link replicating")

    # Nothing fails: nothing to skip, and nothing is touched.
    refused = skip(net, "--auto-approve")
    assert refused.exit_code == 1, refused.output
    assert "there is no transaction to skip" in refused.output

    # A constraint only the subscriber has. (A unique index would not do:
    # pglogical resolves an insert that collides on any unique index as a
    # conflict, overwriting the local row, so nothing stays poisoned.)
    net.execute(
        "region",
        "ALTER TABLE public.technology ADD CONSTRAINT technology_no_poison CHECK (title <> 'poison')",
    )
    fine, poison = str(uuid.uuid4()), str(uuid.uuid4())
    with net.connect("d1") as conn, conn.transaction():
        conn.execute(
            "INSERT INTO public.technology (id, title, district, approved)"
            " VALUES (%s, 'fine', 'd1', true), (%s, 'poison', 'd1', true)",
            (fine, poison),
        )
    # Queued behind the poison, they arrive once it is skipped: the provider
    # cures its row (so the repair can copy it) and renames the first one.
    net.execute("d1", "UPDATE public.technology SET title = 'cured' WHERE id = %s", (poison,))
    net.execute("d1", "UPDATE public.technology SET title = 'renamed' WHERE id = %s", (first,))

    def conflict() -> bool:
        found = region_edge(net)
        # stuck once the worker has failed there twice (native retries every 5 s)
        return found["cause"] in ("conflict", "stuck") and found["failed_lsn"] is not None

    wait_for(conflict, "status naming the conflict and its LSN", 60)
    lsn = region_edge(net)["failed_lsn"]

    # A wrong LSN is refused; a "no" at the prompt changes nothing.
    wrong = skip(net, "--lsn", "0/1", "--auto-approve")
    assert wrong.exit_code == 1 and "is not the failing transaction" in wrong.output, wrong.output
    cancelled = skip(net, answer="no\n")
    assert cancelled.exit_code == 1 and "Skip cancelled; nothing was done." in cancelled.output
    assert f"finish LSN:  {lsn.upper()} (from the server log)" in cancelled.output
    assert "public.technology" in cancelled.output
    assert title_at(net, "region", fine) is None and title_at(net, "region", first) == "first"

    result = skip(net, answer="yes\n")
    print(result.output)
    assert result.exit_code == 0, result.output
    assert "Skipped:" in result.output and "now consistent" in result.output
    # Only the skipped rows were repaired: the queued updates came by replication.
    assert "Repair: 2 inserted, 0 updated, 0 deleted." in result.output

    # The link resumed (the queued update arrived) and the skipped rows were repaired.
    assert title_at(net, "region", first) == "renamed"
    assert title_at(net, "region", fine) == "fine"
    assert title_at(net, "region", poison) == "cured"
    later = insert(net, "d1", "later")
    wait_for(lambda: title_at(net, "region", later) == "later", "a change made after the skip")
    assert region_edge(net)["cause"] is None

    rows = net.execute(
        "region", "SELECT result, actions, message FROM reconcile.apply_log ORDER BY id DESC LIMIT 1"
    )
    record_result, actions, message = rows[0]
    assert record_result == "ok" and message is None, rows
    assert [(a["kind"], a["status"]) for a in actions] == [
        ("skip_transaction", "done"),
        ("verify_repair", "done"),
    ]
    assert lsn.upper() in actions[0]["description"]
