"""Two nodes whose connections reach one database: a blocking error read live, nothing touched."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.support import cli

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tools.netproxy import NetProxy  # noqa: E402

pytestmark = pytest.mark.server

SMALL = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}


@pytest.fixture
def proxy() -> Iterator[NetProxy]:
    with NetProxy() as p:
        yield p


def test_admin_dsn_reaching_another_nodes_database_blocks_and_touches_nothing(
    network: Any, proxy: NetProxy
) -> None:
    net = network(SMALL)
    # d2's admin_dsn names d1's database through a second port (a proxy, as a
    # pgbouncer would be): offline the two DSNs differ, live they are one database.
    topology = net.dir / "topology.yaml"
    yaml = YAML(typ="safe")
    data = yaml.load(topology.read_text())
    params = dict(part.split("=", 1) for part in data["nodes"]["d1"]["dsn"].split())
    link = proxy.add("d2-admin", ("127.0.0.1", int(params["port"])))
    params["port"] = str(link.port)
    data["nodes"]["d2"]["admin_dsn"] = " ".join(f"{k}={v}" for k, v in params.items())
    with topology.open("w") as out:
        yaml.dump(data, out)
    assert cli("validate", "-d", str(net.dir)).exit_code == 0

    result = cli("plan", "-d", str(net.dir), "--format", "json")
    assert result.exit_code == 1, result.output
    blockers = json.loads(result.stdout)["blockers"]
    named = {(b["node"], b["message"].split(" (")[0]) for b in blockers}
    assert ("d1", "reaches the same database as node d2") in named, blockers
    assert ("d2", "reaches the same database as node d1") in named, blockers

    applied = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert applied.exit_code != 0, applied.output
    for node in SMALL:
        rows = net.execute(node, "SELECT count(*) FROM pglogical.node")
        assert rows == [(0,)], f"{node} was touched: {rows}"
