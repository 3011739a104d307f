"""An additive schema migration rolled out on a generated four-level network, on both engines.

woreda -> zone -> region -> federal, each level on its own server, two
branches below the region. While apply runs, every subscription's status is
polled; afterwards each node's record in reconcile.schema_migrations shows the
rollout went top-down, and a row written at a woreda with the new column
reaches the federal level with its value. On native this also covers the
replica identity of a table the migration creates (its filter reads a
non-key column): planned before the table exists, set after the migration.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML
from support import assert_in_sync, cli, wait_for

from reconciler.load import load_desired_state

pytestmark = pytest.mark.server

STATUS_SCHEMA = Path(__file__).resolve().parent.parent / "schema" / "status.v1.schema.json"

LEVELS = ("woreda", "zone", "region", "federal")
FOUR = {
    "federal": None,
    "amhara": "federal",
    "gondar": "amhara",
    "wollo": "amhara",
    "dabat": "gondar",
    "kobo": "wollo",
}
ADD = """-- a summary for every technology, and a new table in the set
ALTER TABLE public.technology ADD COLUMN summary text;
CREATE TABLE public.practice (id uuid PRIMARY KEY, title text NOT NULL, approved boolean NOT NULL);
"""
PRACTICE = """      public.practice:
        row_filter: "approved"
"""
PGLOGICAL_STATUS = "SELECT subscription_name::text, status FROM pglogical.show_subscription_status()"
# The same words for native subscriptions, read independently of the tool's
# own query: enabled with no apply worker is down.
NATIVE_STATUS = """
SELECT s.subname::text,
       CASE WHEN NOT s.subenabled THEN 'disabled'
            WHEN EXISTS (SELECT FROM pg_subscription_rel r WHERE r.srsubid = s.oid AND r.srsubstate <> 'r')
                 THEN 'initializing'
            WHEN w.pid IS NULL THEN 'down'
            ELSE 'replicating' END
  FROM pg_subscription s
  LEFT JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL
 WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def _use_engine(directory: Path, engine: str) -> None:
    path = directory / "topology.yaml"
    yaml = YAML(typ="safe")
    data = yaml.load(path.read_text())
    data["engine"] = engine
    with path.open("w") as out:
        yaml.dump(data, out)


def _statuses(net: Any, engine: str) -> dict[str, str]:
    """'node: subscription' -> status, for every subscription of the network."""
    query = PGLOGICAL_STATUS if engine == "pglogical" else NATIVE_STATUS
    return {f"{node}: {name}": status for node in FOUR for name, status in net.execute(node, query)}


class Watch:
    """Polls every subscription's status while apply runs; keeps whatever was down."""

    def __init__(self, net: Any, engine: str) -> None:
        self.net, self.engine = net, engine
        self.seen: set[str] = set()
        self.polls = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self.seen |= {sub for sub, status in _statuses(self.net, self.engine).items() if status == "down"}
            self.polls += 1

    def __enter__(self) -> Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@pytest.mark.parametrize("engine", ["pglogical", "native"])
def test_an_additive_migration_rolls_out_top_down_on_four_levels_with_every_link_up(
    network: Any, engine: str
) -> None:
    net = network(FOUR, levels=LEVELS)
    directory = Path(net.dir)
    _use_engine(directory, engine)
    assert load_desired_state(directory).engine == engine
    first = cli("apply", "-d", str(directory), "--auto-approve")
    assert first.exit_code == 0, first.output
    # Links still starting after the first apply are not the rollout's doing.
    wait_for(
        lambda: set(_statuses(net, engine).values()) == {"replicating"},
        "every link replicating before the rollout",
        timeout=60,
    )

    (directory / "migrations").mkdir()
    (directory / "migrations" / "0001_add_summary.sql").write_text(ADD)
    sets = directory / "replication.yaml"
    assert "    tables:\n" in sets.read_text()
    sets.write_text(sets.read_text().replace("    tables:\n", "    tables:\n" + PRACTICE, 1))
    plan = cli("plan", "-d", str(directory))
    assert plan.exit_code == 0, plan.output
    assert plan.stdout.count("+ migration 0001_add_summary (top down") == len(FOUR), plan.stdout

    with Watch(net, engine) as watch:
        result = cli("apply", "-d", str(directory), "--auto-approve")
    assert result.exit_code == 0, result.output
    assert watch.polls > 0 and not watch.seen, watch.seen

    # Top-down, from what each node recorded: applied_at is the migration
    # transaction's start, so a node started only after its upstream committed.
    applied: dict[str, datetime] = {}
    for node in FOUR:
        rows = net.execute(node, "SELECT id, name, applied_at FROM reconcile.schema_migrations")
        assert [(r[0], r[1]) for r in rows] == [(1, "0001_add_summary")], (node, rows)
        applied[node] = rows[0][2]
    by_level = {level: sorted(applied[n] for n in FOUR if net.state.nodes[n].level == level) for level in LEVELS}
    for node, upstream in FOUR.items():
        if upstream is not None:
            assert applied[upstream] < applied[node], (node, upstream, by_level)
    assert_in_sync(directory)

    # Status JSON: each node's migration level and the network summary, valid against its schema.
    status = cli("status", "-d", str(directory), "--format", "json", "--timeout", "5", "--no-drift")
    document = json.loads(status.stdout)
    assert {n["node"]: n["schema_migration"] for n in document["nodes"]} == dict.fromkeys(FOUR, 1)
    assert document["release"] == {
        "migration": 1,
        "nodes": len(FOUR),
        "at_release": len(FOUR),
        "summary": f"release 0001: {len(FOUR)} of {len(FOUR)} nodes",
    }
    jsonschema.Draft7Validator(json.loads(STATUS_SCHEMA.read_text())).validate(document)

    # A woreda's row with the new column, and one in the new table, reach the federal level.
    tid, pid = str(uuid.uuid4()), str(uuid.uuid4())
    net.execute(
        "dabat",
        "INSERT INTO public.technology (id, title, district, approved, summary) VALUES (%s, 't', 'dabat', true, 'new')",
        (tid,),
    )
    net.execute("kobo", "INSERT INTO public.practice VALUES (%s, 'p', true)", (pid,))

    def arrived() -> bool:
        tech = net.execute("federal", "SELECT summary FROM public.technology WHERE id = %s", (tid,))
        practice = net.execute("federal", "SELECT title FROM public.practice WHERE id = %s", (pid,))
        return tech == [("new",)] and practice == [("p",)]

    wait_for(arrived, "the woreda rows with the new shape at the federal level", timeout=60)
    assert "down" not in _statuses(net, engine).values()
