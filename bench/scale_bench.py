"""Plan and status at 1,001 nodes (1 nation, 20 regions, 980 districts as databases over seven servers).

The network is laid out but not applied (980 districts would need 980 slots
and apply workers: more than these servers are sized for), so the plan is
the onboarding plan of the whole network, every node read; status reads
every node's health. Each is printed next to a bare concurrent connect +
SELECT 1 to the same nodes with the same parallelism (32), as plan_bench does.
Usage: python -m bench.scale_bench [--port-base P] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Figure, machine, median, table
from bench.plan_bench import PARALLELISM, select_one
from reconciler.health.network import network_health
from reconciler.planner import compute_plan
from tools.lab import Lab, tree

DEFAULT_PORT_BASE = 26060
REGIONS, DISTRICTS_PER_REGION = 20, 49


def run(port_base: int = DEFAULT_PORT_BASE, repeat: int = 3) -> list[Figure]:
    district_ports = [port_base + 2 + i for i in range(5)]
    specs = tree(REGIONS, DISTRICTS_PER_REGION, port_base, [port_base + 1], district_ports)
    root = Path(tempfile.gettempdir()) / f"reconcile-bench-scale-{port_base}"
    os.environ["RECONCILE_CACHE_DIR"] = str(root / "cache")
    lab = Lab(root, specs)
    figures: list[Figure] = []
    try:
        print(f"scale: {len(specs)} nodes on 7 servers, ports {port_base}..{port_base + 6}", flush=True)
        lab.start()
        created = lab.create_databases()
        print(f"  {len(specs)} node databases created in {created:.1f} s", flush=True)
        directory = root / "desired-state"
        state = lab.write_desired(directory)
        names = sorted(state.nodes)
        compute_plan(state, directory, parallelism=PARALLELISM)  # warm up, remember the filters
        plans, statuses, floors = [], [], []
        actions = 0
        for _ in range(repeat):
            floors.append(select_one(state, names))
            t0 = time.monotonic()
            plan = compute_plan(state, directory, parallelism=PARALLELISM).plan
            plans.append(time.monotonic() - t0)
            if plan.unreachable:
                raise RuntimeError(f"{len(plan.unreachable)} nodes did not answer the plan")
            actions = len(plan.actions)
            t0 = time.monotonic()
            network_health(state, directory, drift=False, parallelism=PARALLELISM)
            statuses.append(time.monotonic() - t0)
        floor, plan_s, status_s = median(floors), median(plans), median(statuses)
        where = machine(lab.specs["nation"].conninfo)
        details = {"nodes": len(names), "plan_s": plans, "status_s": statuses, "select1_s": floors}
        print(
            f"  {len(names)} nodes: plan {plan_s:.2f} s ({plan_s / floor:.2f}x), status {status_s:.2f} s"
            f" ({status_s / floor:.2f}x), connect+SELECT 1 {floor:.2f} s",
            flush=True,
        )
        runs = f"median of {repeat}"
        figures += [
            Figure(f"plan, {len(names)} nodes (onboarding: nothing applied yet)", plan_s, "s", "", None,
                   f"{actions} actions; {plan_s / floor:.2f}x connect+SELECT 1; {runs}", details, where),
            Figure(f"status, {len(names)} nodes", status_s, "s", "", None,
                   f"{status_s / floor:.2f}x connect+SELECT 1 (without drift); {runs}", details, where),
            Figure(f"connect+SELECT 1, {len(names)} nodes", floor, "s", "", None,
                   f"parallelism {PARALLELISM}", details, where),
        ]  # fmt: skip
    finally:
        lab.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_bench")
    parser.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(table(run(args.port_base, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
