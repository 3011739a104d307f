"""Throwaway pglogical networks for benchmarks and chaos runs: servers, databases, desired state.

Test tooling, not product code. A `Lab` lays a nation/region/district tree out
on local servers that it owns (one data directory per port under `root`),
each level on servers of its own: pglogical's forwarding apply worker crashes
a server that holds two tiers (REPLICATION-NOTES "Every tier on its own
PostgreSQL server"). Nodes of one level are databases of the same servers.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from ruamel.yaml import YAML

from reconciler.apply import ApplyOptions, ApplyReport, Progress, apply_plan, settle_records
from reconciler.load import load_desired_state
from reconciler.model import DesiredState
from reconciler.planner import compute_plan
from reconciler.sandbox_databases import create_database
from reconciler.sandbox_server import admin_conninfo, ensure_server, remove_server

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "desired-state" / "sandbox-schema.sql"
SETS = REPO / "desired-state" / "replication.yaml"
LEVELS = ("district", "region", "nation")


@dataclass(frozen=True)
class NodeSpec:
    """One node of a lab network: where its database lives."""

    name: str
    level: str
    upstream: str | None
    port: int
    dbname: str

    @property
    def conninfo(self) -> str:
        """Direct connection (the sandbox's own way in): loopback, trust."""
        return admin_conninfo(self.port, self.dbname)


def tree(
    regions: int,
    districts_per_region: int,
    nation_port: int,
    region_ports: Sequence[int],
    district_ports: Sequence[int],
) -> list[NodeSpec]:
    """1 nation, `regions` regions, `districts_per_region` districts each; levels on disjoint ports.

    Regions and districts are spread over their ports in contiguous blocks.
    """
    if set(region_ports) & set(district_ports) or nation_port in (*region_ports, *district_ports):
        raise ValueError("each level needs servers of its own")
    specs = [NodeSpec("nation", "nation", None, nation_port, "nation")]
    total = regions * districts_per_region
    for r in range(1, regions + 1):
        region = f"region_{r:02d}"
        rport = region_ports[(r - 1) * len(region_ports) // regions]
        specs.append(NodeSpec(region, "region", "nation", rport, region))
        for d in range(1, districts_per_region + 1):
            index = (r - 1) * districts_per_region + (d - 1)
            name = f"district_{r:02d}_{d:02d}"
            dport = district_ports[index * len(district_ports) // total]
            specs.append(NodeSpec(name, "district", region, dport, name))
    return specs


def _write_yaml(path: Path, data: object) -> None:
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    with path.open("w") as out:
        yaml.dump(data, out)


class Lab:
    """Servers and node databases of one throwaway network, under `root`."""

    def __init__(self, root: Path, specs: Sequence[NodeSpec], schema: Path = SCHEMA) -> None:
        self.root = root
        self.specs = {s.name: s for s in specs}
        self.schema = schema
        self.ports = sorted({s.port for s in specs})

    def pgdata(self, port: int) -> Path:
        return self.root / str(port)

    def start(self) -> float:
        """Fresh servers (leftovers of an earlier run under `root` are removed first); seconds taken."""
        t0 = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        # As root the servers run as the `postgres` OS user, who must reach them.
        self.root.chmod(0o755)
        for port in self.ports:
            remove_server(self.pgdata(port))
        with ThreadPoolExecutor(max_workers=len(self.ports)) as pool:
            list(pool.map(lambda p: ensure_server(p, self.pgdata(p)), self.ports))
        return time.monotonic() - t0

    def create_databases(self, workers: int = 8) -> float:
        """One database per node with pglogical and the schema; seconds taken."""
        t0 = time.monotonic()
        schema = self.schema.read_text()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda s: create_database(s.port, s.dbname, schema), self.specs.values()))
        return time.monotonic() - t0

    def stop(self) -> None:
        """Stop and delete every server, then everything else under `root`."""
        for port in self.ports:
            remove_server(self.pgdata(port))
        shutil.rmtree(self.root, ignore_errors=True)

    def write_desired(
        self,
        directory: Path,
        dsn: Callable[[NodeSpec], str] | None = None,
        admin_dsn: Callable[[NodeSpec], str | None] | None = None,
        sets: Path = SETS,
    ) -> DesiredState:
        """The desired-state directory of this network; `dsn`/`admin_dsn` may route through proxies."""
        directory.mkdir(parents=True, exist_ok=True)
        nodes: dict[str, dict[str, str]] = {}
        for name, spec in sorted(self.specs.items()):
            node = {"level": spec.level, "dsn": dsn(spec) if dsn else plain_dsn(spec)}
            admin = admin_dsn(spec) if admin_dsn else None
            if admin:
                node["admin_dsn"] = admin
            if spec.upstream:
                node["upstream"] = spec.upstream
            nodes[name] = node
        _write_yaml(
            directory / "topology.yaml",
            {"version": 1, "engine": "pglogical", "levels": list(LEVELS), "nodes": nodes},
        )
        (directory / "replication.yaml").write_text(sets.read_text())
        return load_desired_state(directory)

    def subscribers(self) -> list[NodeSpec]:
        parents = {s.upstream for s in self.specs.values() if s.upstream}
        return [self.specs[n] for n in sorted(parents)]

    def subscription_states(self) -> dict[str, str]:
        """`node/subscription` -> status, read directly from every subscriber."""
        states: dict[str, str] = {}
        for spec in self.subscribers():
            try:
                with psycopg.connect(spec.conninfo, autocommit=True, connect_timeout=5) as conn:
                    rows = conn.execute(
                        sql.SQL("SELECT subscription_name, status FROM pglogical.show_subscription_status()")
                    ).fetchall()
            except psycopg.OperationalError as exc:
                states[f"{spec.name}/*"] = f"unreachable: {exc}".splitlines()[0]
                continue
            for sub, status in rows:
                states[f"{spec.name}/{sub}"] = str(status)
        return states

    def wait_replicating(self, timeout: float = 300.0) -> float:
        """Wait until every subscription of the network is `replicating`; seconds waited."""
        t0 = time.monotonic()
        expected = len(self.specs) - 1
        while True:
            states = self.subscription_states()
            good = [k for k, v in states.items() if v == "replicating"]
            if len(good) >= expected:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                bad = {k: v for k, v in states.items() if v != "replicating"}
                raise TimeoutError(
                    f"{len(good)}/{expected} subscriptions replicating after {timeout}s: {bad}"
                )
            time.sleep(0.5)


def plain_dsn(spec: NodeSpec) -> str:
    return f"host=127.0.0.1 port={spec.port} dbname={spec.dbname} user=postgres"


def converge(
    state: DesiredState,
    directory: Path,
    *,
    nodes: Iterable[str] | None = None,
    parallelism: int = 32,
    progress: Progress = lambda _event: None,
) -> tuple[float, int, ApplyReport | None]:
    """Plan and apply until converged (like `reconcile apply --auto-approve`): seconds, actions, report.

    With nothing to change it does what the CLI does then: records an ok
    apply where the plan saw the last one had not completed (settle_records).
    """
    t0 = time.monotonic()
    selected = sorted(nodes) if nodes is not None else None
    plan = compute_plan(state, directory, nodes=selected, parallelism=parallelism).plan
    if plan.blockers:
        raise RuntimeError(f"plan has blockers: {plan.blockers}")
    if plan.unreachable:
        raise RuntimeError(f"unreachable nodes: {plan.unreachable}")
    options = ApplyOptions(parallelism=parallelism)
    if not plan.actions:
        settle_records(state, sorted(plan.unsettled), plan, options)
        return time.monotonic() - t0, 0, None
    report = apply_plan(state, directory, plan, options, progress)
    return time.monotonic() - t0, len(plan.actions), report
