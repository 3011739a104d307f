"""Onboarding a district that already holds data, over a slow link: bytes moved, and a killed apply resumed.

A nation, a region and two districts (each level on its own server). The
region already holds d1's approved rows; d2 ran on its own with `--rows`
rows of its public.technology (sandbox schema), 10 % approved, and is then
declared. Every connection to d2 goes through one netproxy link (in this
process, for its byte counters) on its own port: 50 ms each way (100 ms
added to every round trip) and 2 MB/s per connection and direction (the
token bucket of tools/netproxy is per connection). Both d2's `dsn` (the
region's pglogical subscription) and the tool's own sessions use it (no
admin_dsn). `reconcile apply` runs as a subprocess, as an operator runs it.

Figures:
- bytes moved from d2 during the onboarding apply / approved-row bytes
  (sum of octet_length(row_to_json(t)::text) of d2's approved rows: the
  rows as compact JSON text, about what any logical copy of them must
  carry; pg_column_size and the repair's own to_jsonb text in details),
  target <= 1.3; the apply's wall time and peak RSS;
- the same onboarding SIGKILLed once about half the approved rows are at
  the region, then `reconcile apply` again: the rerun's bytes against
  (1 - fraction arrived) x the full onboarding's bytes x 1.1, whether region
  and nation end exact, and the rerun's wall time.
The onboarding's bytes are split by phase from a timeline of the link's
counters and the region's row count (before the first row arrived: plan,
catalog actions and the hash comparison; then the row fetches).
Usage: python -m bench.onboard_bench [--port-base P] [--rows N]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.common import REPO, Figure, machine, table
from tools.lab import Lab, NodeSpec, converge, plain_dsn, tree
from tools.netproxy import Link, NetProxy

DEFAULT_PORT_BASE = 26080
DEFAULT_ROWS = 1_000_000
APPROVED_EVERY = 10  # 1 row in 10 approved
D1_ROWS = 10_000  # approved rows the region already holds from d1
LATENCY_EACH_WAY = 0.050  # seconds: 100 ms added to every round trip
BANDWIDTH = 2_000_000  # bytes per second, per connection and direction
RATIO_TARGET = 1.3
RERUN_SLACK = 1.1
APPLY_TIMEOUT = 1800.0  # seconds, per `reconcile apply`
SAMPLE_SECONDS = 0.2
D1, D2 = "district_01_01", "district_01_02"
# DataRow framing (v3 protocol): type byte + int32 length + int16 field count, then int32 per field.
ROW_OVERHEAD, FIELD_OVERHEAD = 7, 4

APPROVED_BYTES = """
SELECT count(*),
       COALESCE(sum(octet_length(row_to_json(t)::text)), 0),
       COALESCE(sum(pg_column_size(t.*)), 0),
       COALESCE(sum(octet_length(to_jsonb(t)::text)), 0)
FROM public.technology AS t
WHERE t.approved
"""


@dataclass
class Sample:
    seconds: float
    down: int
    up: int
    region_rows: int


@dataclass
class ApplyRun:
    """One `reconcile apply` subprocess: exit code, wall time, peak RSS, link bytes, timeline, output."""

    exit_code: int | None
    seconds: float
    max_rss_kib: int | None
    down: int
    up: int
    killed_at: Sample | None = None
    timeline: list[Sample] = field(default_factory=list)
    output: str = ""


def _count_d2(conninfo: str, approved_only: bool = False) -> int:
    where = " AND approved" if approved_only else ""
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM public.technology WHERE district = %s{where}", (D2,)
        ).fetchone()
    return int(row[0]) if row else 0


def _wait_count(conninfo: str, expected: int, timeout: float) -> tuple[int, float]:
    """Poll until `conninfo` holds `expected` d2 rows (bounded); (rows seen, seconds waited)."""
    t0 = time.monotonic()
    seen = -1
    while time.monotonic() - t0 < timeout:
        seen = _count_d2(conninfo)
        if seen == expected:
            break
        time.sleep(0.5)
    return seen, time.monotonic() - t0


def _reap(pid: int, deadline: float) -> tuple[int | None, int | None]:
    """Wait (bounded, polling) for child `pid`; (exit code, its peak RSS in KiB) or (None, None)."""
    while time.monotonic() < deadline:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status), int(usage.ru_maxrss)
        time.sleep(0.1)
    return None, None


def _reconcile_apply(
    directory: Path,
    link: Link,
    region: str,
    log: Path,
    kill_at_rows: int | None = None,
    timeout: float = APPLY_TIMEOUT,
) -> ApplyRun:
    """Run `reconcile apply` (bounded), sampling the link and the region; SIGKILL it at `kill_at_rows`."""
    link.reset_counters()
    args = [
        str(Path(sys.executable).parent / "reconcile"),
        "apply",
        "-d",
        str(directory),
        "--auto-approve",
        "--allow-no-git",
        "--allow-destroy",
        "--lock-timeout",
        "60",
    ]
    t0 = time.monotonic()
    timeline: list[Sample] = []
    killed: list[Sample] = []
    stop = threading.Event()
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)

        def sample() -> None:
            with psycopg.connect(region, autocommit=True, connect_timeout=5) as conn:
                while not stop.is_set():
                    row = conn.execute(
                        "SELECT count(*) FROM public.technology WHERE district = %s", (D2,)
                    ).fetchone()
                    up_bytes, down_bytes = link.counters()
                    s = Sample(time.monotonic() - t0, down_bytes, up_bytes, int(row[0]) if row else 0)
                    timeline.append(s)
                    if kill_at_rows is not None and not killed and s.region_rows >= kill_at_rows:
                        os.kill(proc.pid, signal.SIGKILL)
                        killed.append(s)
                    stop.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, name="onboard-sampler", daemon=True)
        sampler.start()
        code, rss = _reap(proc.pid, t0 + timeout)
        if code is None:
            os.kill(proc.pid, signal.SIGKILL)
            _reap(proc.pid, time.monotonic() + 30)
        proc.returncode = code if code is not None else -9
        seconds = time.monotonic() - t0
        stop.set()
        sampler.join(10)
    up, down = link.counters()
    return ApplyRun(
        code,
        seconds,
        rss,
        down,
        up,
        killed[0] if killed else None,
        timeline,
        log.read_text(errors="replace"),
    )


def _progress_lines(output: str) -> list[str]:
    return [
        line.strip() for line in output.splitlines() if "public.technology:" in line and " rows, " in line
    ]


@dataclass
class Network:
    lab: Lab
    proxy: NetProxy
    link: Link
    directory: Path
    approved: int
    approved_json: int
    approved_column_size: int
    approved_jsonb: int
    expected_leaf_bytes: int
    expected_fetch_bytes: int
    load_seconds: float


def _build(root: Path, port_base: int, rows: int, description_chars: int) -> Network:
    """Servers, the network without d2, d1's rows at the region, d2's own rows; then d2 declared."""
    specs = tree(1, 2, port_base, [port_base + 1], [port_base + 2])
    lab = Lab(root, specs)
    lab.start()
    lab.create_databases()
    proxy = NetProxy()
    try:
        link = proxy.add("d2", ("127.0.0.1", lab.specs[D2].port), port_base + 3)
        link.set_latency(up=LATENCY_EACH_WAY, down=LATENCY_EACH_WAY)
        link.set_bandwidth(BANDWIDTH, BANDWIDTH)

        def dsn(spec: NodeSpec) -> str:
            if spec.name == D2:
                return f"host=127.0.0.1 port={link.port} dbname={spec.dbname} user=postgres"
            return plain_dsn(spec)

        directory = root / "desired-state"
        without = Lab(root, [s for s in specs if s.name != D2])
        state = without.write_desired(directory, dsn=dsn)
        _, _, report = converge(state, directory)
        if report is None or not report.converged:
            raise RuntimeError("the network without d2 did not converge")
        without.wait_replicating(timeout=300)
        with psycopg.connect(lab.specs[D1].conninfo, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO public.technology (id, title, district, approved)"
                " SELECT gen_random_uuid(), 'd1 technology ' || i, %s, true FROM generate_series(1, %s) i",
                (D1, D1_ROWS),
            )
        t0 = time.monotonic()
        with psycopg.connect(lab.specs[D2].conninfo, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO public.technology (id, title, description, district, approved)"
                " SELECT gen_random_uuid(), 'technology ' || i,"
                " CASE WHEN %(d)s > 0 THEN left(repeat(md5(i::text), (%(d)s + 31) / 32), %(d)s) END,"
                " %(district)s, i %% %(every)s = 0"
                " FROM generate_series(1, %(rows)s) i",
                {"d": description_chars, "district": D2, "every": APPROVED_EVERY, "rows": rows},
            )
            conn.execute("VACUUM ANALYZE public.technology")
            stats = conn.execute(APPROVED_BYTES).fetchone()
            assert stats is not None
            approved, as_json, column_size, as_jsonb = (int(v) for v in stats)
            # What the comparison's leaf round (key text + 16 hex digits) and the
            # fetches (to_jsonb text) return for these rows, DataRow framing included.
            leaf = conn.execute(
                "SELECT count(*) * (%s + 2 * %s + 36 + 16) FROM public.technology WHERE approved",
                (ROW_OVERHEAD, FIELD_OVERHEAD),
            ).fetchone()
            fetch = conn.execute(
                "SELECT COALESCE(sum(%s + %s + octet_length(to_jsonb(s)::text)), 0) FROM"
                " (SELECT approved, description, district, id, title, updated_at"
                "  FROM public.technology WHERE approved) AS s",
                (ROW_OVERHEAD, FIELD_OVERHEAD),
            ).fetchone()
        load_seconds = time.monotonic() - t0
        seen, _ = _wait_count(lab.specs["nation"].conninfo, 0, 5)  # nothing of d2 anywhere yet
        if seen != 0:
            raise RuntimeError(f"the nation holds {seen} d2 rows before d2 is declared")
        _wait_rows(lab.specs["nation"].conninfo, D1, D1_ROWS, 120)
        lab.write_desired(directory, dsn=dsn)
        return Network(
            lab,
            proxy,
            link,
            directory,
            approved,
            as_json,
            column_size,
            as_jsonb,
            int(leaf[0]) if leaf else 0,
            int(fetch[0]) if fetch else 0,
            load_seconds,
        )
    except BaseException:
        proxy.close()
        lab.stop()
        raise


def _wait_rows(conninfo: str, district: str, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM public.technology WHERE district = %s", (district,)
            ).fetchone()
        if row and int(row[0]) >= expected:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{district}'s {expected} rows did not arrive within {timeout:g} s")


def _exact(net: Network) -> dict[str, dict[str, int]]:
    """d2 rows (all, approved) at the region and, after a bounded wait, at the nation."""
    region, nation = net.lab.specs["region_01"].conninfo, net.lab.specs["nation"].conninfo
    _wait_count(nation, net.approved, 120)
    return {
        node: {"d2_rows": _count_d2(c), "d2_approved": _count_d2(c, approved_only=True)}
        for node, c in (("region", region), ("nation", nation))
    }


def _phases(run: ApplyRun) -> dict[str, int]:
    """Bytes down the link before the first new d2 row reached the region, while rows arrived, and after."""
    start = run.timeline[0].region_rows if run.timeline else 0  # a rerun starts with rows there
    first = next((s for s in run.timeline if s.region_rows > start), None)
    top = max((s.region_rows for s in run.timeline), default=0)
    full = next((s for s in run.timeline if s.region_rows >= top), None)
    before = first.down if first else run.down
    during = (full.down if full else run.down) - before
    return {
        "before_first_row": before,
        "while_rows_arrived": during,
        "after_last_row": run.down - before - during,
    }


def _tail(output: str, n: int = 12) -> list[str]:
    return [line.rstrip() for line in output.splitlines() if line.strip()][-n:]


def run(
    port_base: int = DEFAULT_PORT_BASE, rows: int = DEFAULT_ROWS, description_chars: int = 0
) -> list[Figure]:
    root = Path(tempfile.gettempdir()) / f"reconcile-bench-onboard-{port_base}"
    os.environ["RECONCILE_CACHE_DIR"] = str(root / "cache")
    shape = (
        f"d2: {rows:,} rows, 1 in {APPROVED_EVERY} approved, description {description_chars} chars;"
        f" link +{LATENCY_EACH_WAY * 2000:.0f} ms RTT, {BANDWIDTH / 1e6:g} MB/s per connection"
    )
    print(f"onboard: {shape}; ports {port_base}..{port_base + 3} ({root})", flush=True)
    figures: list[Figure] = []

    # 1. A whole onboarding.
    net = _build(root, port_base, rows, description_chars)
    try:
        where = machine(net.lab.specs["nation"].conninfo)
        print(
            f"  d2 loaded in {net.load_seconds:.1f} s: {net.approved:,} approved rows,"
            f" {net.approved_json:,} B as row_to_json text, {net.approved_column_size:,} B pg_column_size",
            flush=True,
        )
        full = _reconcile_apply(
            net.directory, net.link, net.lab.specs["region_01"].conninfo, root / "apply-1.log"
        )
        ends = _exact(net)
    finally:
        net.proxy.close()
        net.lab.stop()
    for line in _progress_lines(full.output)[-4:]:
        print(f"    {line}")
    phases = _phases(full)
    ratio = full.down / net.approved_json if net.approved_json else float("inf")
    exact = all(v["d2_rows"] == v["d2_approved"] == net.approved for v in ends.values())
    print(
        f"  onboarding apply: exit {full.exit_code}, {full.seconds:.1f} s, {full.down:,} B down"
        f" ({full.up:,} B up), {ratio:.2f}x the approved rows' JSON; phases {phases}; ends {ends}",
        flush=True,
    )
    common = {
        "rows": rows,
        "approved_rows": net.approved,
        "description_chars": description_chars,
        "approved_bytes_row_to_json": net.approved_json,
        "approved_bytes_pg_column_size": net.approved_column_size,
        "approved_bytes_to_jsonb": net.approved_jsonb,
        "d1_rows_at_region": D1_ROWS,
        "added_rtt_s": LATENCY_EACH_WAY * 2,
        "bandwidth_bytes_per_s_per_connection": BANDWIDTH,
    }
    reasons = []
    if ratio > RATIO_TARGET:
        compared = phases["before_first_row"]
        reasons.append(
            f"MISSED: {compared:,} B moved before the first row arrived (plan, catalog actions and the"
            f" hash comparison, whose leaf round returns key + hash of each approved row:"
            f" ~{net.expected_leaf_bytes:,} B by protocol arithmetic), {phases['while_rows_arrived']:,} B"
            f" while rows arrived (fetches as to_jsonb text: ~{net.expected_fetch_bytes:,} B)"
        )
    if full.exit_code != 0 or not exact:
        reasons.append(f"apply exit {full.exit_code}, ends {ends}")
    figures.append(
        Figure(
            "onboard: bytes from d2 / approved-row bytes (+100 ms RTT, 2 MB/s)",
            ratio,
            "x",
            f"<= {RATIO_TARGET}",
            ratio <= RATIO_TARGET and full.exit_code == 0 and exact,
            "; ".join(
                [
                    f"{rows:,} rows at d2, 10 % approved; {full.down:,} B down the d2 link /"
                    f" {net.approved_json:,} B (row_to_json text of the {net.approved:,} approved rows);"
                    f" vs pg_column_size {full.down / max(1, net.approved_column_size):.2f}x",
                    *reasons,
                ]
            ),
            {
                **common,
                "bytes_down": full.down,
                "bytes_up": full.up,
                "ratio_vs_pg_column_size": full.down / max(1, net.approved_column_size),
                "ratio_vs_to_jsonb": full.down / max(1, net.approved_jsonb),
                "phases_bytes_down": phases,
                "expected_leaf_round_bytes": net.expected_leaf_bytes,
                "expected_fetch_bytes": net.expected_fetch_bytes,
                "exit_code": full.exit_code,
                "ends": ends,
                "progress": _progress_lines(full.output)[-4:],
                "output_tail": _tail(full.output),
            },
            where,
        )
    )
    figures.append(
        Figure(
            "onboard: wall time of the onboarding apply",
            full.seconds,
            "s",
            "",
            None,
            f"peak RSS of the apply process {full.max_rss_kib / 1024:.0f} MiB" if full.max_rss_kib else "",
            {**common, "max_rss_kib": full.max_rss_kib, "exit_code": full.exit_code},
            where,
        )
    )

    # 2. The same onboarding, killed half-way, then resumed.
    net = _build(root, port_base, rows, description_chars)
    try:
        region = net.lab.specs["region_01"].conninfo
        first = _reconcile_apply(
            net.directory, net.link, region, root / "apply-killed.log", net.approved // 2
        )
        time.sleep(1.0)  # the killed client's sessions end at the servers
        arrived = _count_d2(region)
        pending: list[tuple[str, ...]] = []
        with psycopg.connect(region, autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SELECT to_regclass('reconcile.pending_rows') IS NOT NULL").fetchone() == (True,):
                pending = [
                    tuple(str(v) for v in r)
                    for r in conn.execute(
                        "SELECT table_name, rows_to_copy, rows_copied FROM reconcile.pending_rows"
                    )
                ]
        rerun = _reconcile_apply(net.directory, net.link, region, root / "apply-rerun.log")
        ends2 = _exact(net)
    finally:
        net.proxy.close()
        net.lab.stop()
    fraction = arrived / net.approved if net.approved else 0.0
    allowed = (1 - fraction) * full.down * RERUN_SLACK
    exact2 = all(v["d2_rows"] == v["d2_approved"] == net.approved for v in ends2.values())
    rerun_phases = _phases(rerun)
    print(
        f"  killed at {first.killed_at.region_rows if first.killed_at else '?'} rows"
        f" ({first.down:,} B down by then); {arrived:,} at the region ({fraction:.1%}); pending {pending}",
        flush=True,
    )
    for line in _progress_lines(rerun.output)[-3:]:
        print(f"    {line}")
    print(
        f"  rerun: exit {rerun.exit_code}, {rerun.seconds:.1f} s, {rerun.down:,} B down"
        f" (allowed {allowed:,.0f}); phases {rerun_phases}; ends {ends2}",
        flush=True,
    )
    met = rerun.down <= allowed and rerun.exit_code == 0 and exact2 and first.killed_at is not None
    why = []
    if first.killed_at is None:
        why.append(f"MISSED: the apply was never killed (it ended first, exit {first.exit_code})")
    if not pending:
        print("  killed apply's output:\n    " + "\n    ".join(_tail(first.output, 20)), flush=True)
    if rerun.down > allowed:
        why.append(f"MISSED: rerun moved {rerun.down:,} B > {allowed:,.0f} B")
    if rerun.exit_code != 0 or not exact2:
        why.append(f"rerun exit {rerun.exit_code}; ends {ends2}")
    details = {
        **common,
        "killed_at_region_rows": first.killed_at.region_rows if first.killed_at else None,
        "killed_after_s": first.killed_at.seconds if first.killed_at else None,
        "killed_run_bytes_down": first.down,
        "killed_run_exit_code": first.exit_code,
        "killed_run_output_tail": _tail(first.output),
        "arrived_before_rerun": arrived,
        "fraction_arrived": fraction,
        "pending_rows_after_kill": pending,
        "full_onboarding_bytes_down": full.down,
        "rerun_bytes_down": rerun.down,
        "rerun_bytes_up": rerun.up,
        "rerun_allowed_bytes": allowed,
        "rerun_phases_bytes_down": rerun_phases,
        "killed_plus_rerun_bytes_down": first.down + rerun.down,
        "rerun_seconds": rerun.seconds,
        "rerun_max_rss_kib": rerun.max_rss_kib,
        "rerun_exit_code": rerun.exit_code,
        "ends": ends2,
        "progress": _progress_lines(rerun.output)[-3:],
        "output_tail": _tail(rerun.output),
    }
    figures.append(
        Figure(
            "onboard: killed half-way, rerun's bytes from d2 / full onboarding's",
            rerun.down / full.down if full.down else None,
            "x",
            f"<= (1 - arrived) x {RERUN_SLACK} = {(1 - fraction) * RERUN_SLACK:.2f}x",
            met,
            "; ".join(
                [
                    f"{fraction:.1%} had arrived; rerun {rerun.down:,} B vs full {full.down:,} B;"
                    f" region and nation {'exact' if exact2 else 'NOT exact'}"
                    f" ({net.approved:,} approved d2 rows)",
                    *why,
                ]
            ),
            details,
            where,
        )
    )
    figures.append(
        Figure(
            "onboard: wall time of the rerun after a kill half-way",
            rerun.seconds,
            "s",
            "",
            None,
            f"full onboarding {full.seconds:.1f} s; exit {rerun.exit_code}",
            details,
            where,
        )
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.onboard_bench", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows of d2 (10 %% approved)")
    parser.add_argument(
        "--description-chars", type=int, default=0, help="characters of each row's description"
    )
    args = parser.parse_args(argv)
    print(table(run(args.port_base, args.rows, args.description_chars)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
