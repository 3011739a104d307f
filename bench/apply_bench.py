"""Apply on a 111-node network, concurrent and one node after another, on fast and on slow admin links.

Layout as plan_bench (1 nation, 10 regions, 100 districts on four local
servers). Figures (issue 15's targets):
- apply empty -> converged with the default parallelism (32): <= 25 s;
- the same with --parallelism 1 (the sequential walk), and the ratio;
- a no-change apply: <= 1.5 s;
- apply empty -> converged with 100 ms added to every round trip of every
  node's admin link (tools/netproxy; `dsn`, which the subscriptions use,
  stays direct): <= 40 s.
"Empty" means fresh node databases (pglogical and the schema, no node), made
again before each run.
Usage: python -m bench.apply_bench [--port-base P]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.common import Figure, machine, median, table
from reconciler.sandbox_databases import drop_databases
from tools.lab import Lab, NodeSpec, converge, tree
from tools.netproxy import LinkProcess

DEFAULT_PORT_BASE = 26040
ADDED_RTT = 0.100


def _fresh(lab: Lab) -> None:
    """Every node database dropped (with its subscriptions and slots) and made again, empty."""
    drop_databases((s.port, s.dbname) for s in lab.specs.values())
    lab.create_databases()


def _apply(
    lab: Lab, directory: Path, parallelism: int, admin_port: dict[str, int] | None = None
) -> tuple[float, int]:
    """Plan + apply from empty until converged; seconds and actions."""

    def admin(spec: NodeSpec) -> str | None:
        if admin_port is None:
            return None
        return f"host=127.0.0.1 port={admin_port[spec.name]} dbname={spec.dbname} user=postgres"

    state = lab.write_desired(directory, admin_dsn=admin)
    seconds, actions, report = converge(state, directory, parallelism=parallelism)
    if report is None or not report.converged:
        raise RuntimeError(f"apply (parallelism {parallelism}) did not converge")
    return seconds, actions


def run(port_base: int = DEFAULT_PORT_BASE) -> list[Figure]:
    specs = tree(10, 10, port_base, [port_base + 1], [port_base + 2, port_base + 3])
    root = Path(tempfile.gettempdir()) / f"reconcile-bench-apply-{port_base}"
    os.environ["RECONCILE_CACHE_DIR"] = str(root / "cache")
    lab = Lab(root, specs)
    figures: list[Figure] = []
    try:
        print(f"apply: starting 4 servers on ports {port_base}..{port_base + 3} ({root})", flush=True)
        lab.start()
        lab.create_databases()
        directory = root / "desired-state"
        concurrent, actions = _apply(lab, directory, 32)
        waited = lab.wait_replicating(timeout=900)
        where = machine(lab.specs["nation"].conninfo)
        print(f"  apply from empty, parallelism 32: {actions} actions in {concurrent:.1f} s", flush=True)
        figures.append(
            Figure(
                "apply, empty -> converged, 111 nodes",
                concurrent,
                "s",
                "<= 25 s",
                concurrent <= 25.0,
                f"{actions} actions, parallelism 32; +{waited:.1f} s until all 110 subscriptions replicate",
                {"actions": actions, "replicating_after_s": waited},
                where,
            )
        )
        noop = []
        state = lab.write_desired(directory)
        for _ in range(3):
            seconds, found, _ = converge(state, directory)
            if found:
                raise RuntimeError(f"no-change apply found {found} actions")
            noop.append(seconds)
        print(f"  no-change apply: {median(noop):.3f} s", flush=True)
        figures.append(
            Figure("apply, no change, 111 nodes", median(noop), "s", "<= 1.5 s", median(noop) <= 1.5,
                   "median of 3 (plan, then the check of apply records)", {"runs": noop}, where)
        )  # fmt: skip

        _fresh(lab)
        sequential, _ = _apply(lab, directory, 1)
        ratio = sequential / concurrent
        print(
            f"  apply from empty, parallelism 1: {sequential:.1f} s ({ratio:.1f}x the concurrent walk)",
            flush=True,
        )
        figures.append(
            Figure(
                "apply, empty -> converged, 111 nodes, parallelism 1 (sequential walk)",
                sequential,
                "s",
                "",
                None,
                f"the concurrent walk (parallelism 32) is {ratio:.1f}x faster",
                {"ratio": ratio},
                where,
            )
        )

        _fresh(lab)
        names = sorted(lab.specs)
        targets = [("127.0.0.1", lab.specs[n].port) for n in names]
        with LinkProcess(targets, latency_down=ADDED_RTT) as links:
            slow, _ = _apply(lab, root / "desired-slow-admin", 32, dict(zip(names, links.ports, strict=True)))
        print(f"  apply from empty, +100 ms on every admin link: {slow:.1f} s", flush=True)
        figures.append(
            Figure(
                "apply, empty -> converged, 111 nodes, +100 ms RTT on every admin link",
                slow,
                "s",
                "<= 40 s",
                slow <= 40.0,
                "parallelism 32; subscriptions' own links direct",
                {"added_rtt_s": ADDED_RTT},
                where,
            )
        )
    finally:
        lab.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.apply_bench")
    parser.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE)
    args = parser.parse_args(argv)
    figures = run(args.port_base)
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
