"""One chaos run: writers at every district while links flap and a region server dies; then prove zero loss.

Layout (each level on servers of its own, tools/lab): the nation on `base`,
region_01 on `base+1`, region_02 on `base+2`, the four districts on `base+3`.
Every district's and region's `dsn` (the DSN its subscriber connects to)
points at a tools/netproxy link; `admin_dsn` stays direct, so the tool's own
reads are not what is being tested here.

During the run, from one seed: writers insert, approve, edit, withdraw and
delete rows of both declared tables at every district; a fault schedule drops,
refuses, resets, slows and throttles links; one region server is stopped with
`pg_ctl stop -m immediate` and restarted. Afterwards every link heals, the run
waits until every slot has confirmed what its provider wrote, runs `reconcile
verify --repair`, and compares: the nation (and each region) must hold
exactly the approved rows of the districts below it, column for column.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from reconciler.sandbox_server import OS_USER_WHEN_ROOT, ensure_server, pg_bin
from tools.lab import Lab, NodeSpec, converge, plain_dsn, tree
from tools.netproxy import Link, NetProxy

REPO = Path(__file__).resolve().parent.parent
DISTRICTS = ("district_01_01", "district_01_02", "district_02_01", "district_02_02")
REGIONS = ("region_01", "region_02")
TECH_COLUMNS = ("id", "title", "description", "district", "approved", "updated_at")
APPROACH_COLUMNS = ("id", "title", "status", "district", "updated_at")  # the declared column list


@dataclass
class Fault:
    at: float
    link: str
    kind: str  # drop | refuse | reset | latency | bandwidth
    duration: float


@dataclass
class Result:
    seed: int
    ok: bool = False
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)


def schedule(rng: random.Random, links: list[str], seconds: float) -> list[Fault]:
    """Seeded faults: each link flaps on its own, never two faults at once on one link."""
    faults = []
    for link in links:
        t = rng.uniform(0.0, 2.0)
        while t < seconds:
            kind = rng.choice(("drop", "drop", "refuse", "reset", "latency", "bandwidth"))
            duration = 0.0 if kind == "reset" else rng.uniform(0.5, min(4.0, seconds / 3))
            faults.append(Fault(round(t, 3), link, kind, round(duration, 3)))
            t += duration + rng.uniform(0.5, 3.0)
    return sorted(faults, key=lambda f: (f.at, f.link))


class Writer(threading.Thread):
    """Random edits at one district: the only writer there, so it knows every row it made."""

    def __init__(self, spec: NodeSpec, rng: random.Random, stop: threading.Event) -> None:
        super().__init__(name=f"writer-{spec.name}", daemon=True)
        self.spec = spec
        self.rng = rng
        self.stop_event = stop
        self.tech: dict[str, bool] = {}  # id -> approved
        self.approach: dict[str, str] = {}  # id -> status
        self.ops: dict[str, int] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.spec.conninfo, autocommit=True) as conn:
                while not self.stop_event.is_set():
                    self.step(conn)
                    time.sleep(self.rng.uniform(0.0, 0.04))
        except BaseException as exc:  # noqa: BLE001 - reported by the run
            self.error = exc

    def _count(self, op: str) -> None:
        self.ops[op] = self.ops.get(op, 0) + 1

    def step(self, conn: psycopg.Connection[Any]) -> None:
        rng = self.rng
        if rng.random() < 0.65:
            self.step_technology(conn, rng)
        else:
            self.step_approach(conn, rng)

    def step_technology(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        op = rng.choices(("insert", "approve", "edit", "withdraw", "delete"), (40, 20, 20, 10, 10))[0]
        drafts = [k for k, a in self.tech.items() if not a]
        approved = [k for k, a in self.tech.items() if a]
        if op == "approve" and drafts:
            key = rng.choice(sorted(drafts))
            conn.execute("UPDATE technology SET approved = true, updated_at = now() WHERE id = %s", (key,))
            self.tech[key] = True
        elif op == "edit" and self.tech:
            key = rng.choice(sorted(self.tech))
            conn.execute(
                "UPDATE technology SET title = %s, description = %s, updated_at = now() WHERE id = %s",
                (f"edited {rng.randrange(10**6)}", f"note {rng.randrange(10**6)}", key),
            )
        elif op == "withdraw" and approved:
            key = rng.choice(sorted(approved))
            conn.execute("UPDATE technology SET approved = false, updated_at = now() WHERE id = %s", (key,))
            self.tech[key] = False
        elif op == "delete" and self.tech:
            key = rng.choice(sorted(self.tech))
            conn.execute("DELETE FROM technology WHERE id = %s", (key,))
            del self.tech[key]
        else:
            op = "insert"
            key = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            ok = rng.random() < 0.4
            conn.execute(
                "INSERT INTO technology (id, title, description, district, approved)"
                " VALUES (%s, %s, %s, %s, %s)",
                (key, f"technology {rng.randrange(10**6)}", "from chaos", self.spec.name, ok),
            )
            self.tech[key] = ok
        self._count(f"technology {op}")

    def step_approach(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        op = rng.choices(("insert", "advance", "edit", "withdraw", "delete"), (40, 25, 15, 10, 10))[0]
        keys = sorted(self.approach)
        if op == "advance" and keys:
            key = rng.choice(keys)
            nxt = {"draft": "submitted", "submitted": "approved", "withdrawn": "submitted"}.get(
                self.approach[key], "approved"
            )
            conn.execute("UPDATE approach SET status = %s, updated_at = now() WHERE id = %s", (nxt, key))
            self.approach[key] = nxt
        elif op == "edit" and keys:
            key = rng.choice(keys)
            conn.execute(
                "UPDATE approach SET title = %s, internal_note = %s, updated_at = now() WHERE id = %s",
                (f"approach edited {rng.randrange(10**6)}", f"internal {rng.randrange(10**6)}", key),
            )
        elif op == "withdraw" and keys:
            key = rng.choice(keys)
            conn.execute("UPDATE approach SET status = 'withdrawn', updated_at = now() WHERE id = %s", (key,))
            self.approach[key] = "withdrawn"
        elif op == "delete" and keys:
            key = rng.choice(keys)
            conn.execute("DELETE FROM approach WHERE id = %s", (key,))
            del self.approach[key]
        else:
            op = "insert"
            key = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            status = rng.choice(("draft", "approved"))
            conn.execute(
                "INSERT INTO approach (id, title, status, district, internal_note)"
                " VALUES (%s, %s, %s, %s, %s)",
                (key, f"approach {rng.randrange(10**6)}", status, self.spec.name, "district only"),
            )
            self.approach[key] = status
        self._count(f"approach {op}")


def _pg_ctl(*args: str) -> None:
    cmd = [str(pg_bin() / "pg_ctl"), *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", OS_USER_WHEN_ROOT, "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, stdin=subprocess.DEVNULL)


def _rows(conninfo: str, query: str) -> set[tuple[Any, ...]]:
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        return {tuple(r) for r in conn.execute(query)}


def _tech_query(where: str = "") -> str:
    return f"SELECT {', '.join(TECH_COLUMNS)} FROM public.technology {where}"


def _approach_query(where: str = "") -> str:
    return f"SELECT {', '.join(APPROACH_COLUMNS)} FROM public.approach {where}"


def kick_down_subscriptions(lab: Lab) -> list[str]:
    """Disable + enable every `down` subscription, so that pglogical restarts its apply worker now.

    pglogical 2.4.2's manager restarts an apply worker that exited with an
    error (its provider was unreachable) only when its latch wakes it, which
    can take its full 180 s sleep (measured here: caught up 181.0 s after
    the links healed). A catalog change of the subscription sets the latch.
    """
    kicked = []
    for spec in lab.subscribers():
        with psycopg.connect(spec.conninfo, autocommit=True, connect_timeout=10) as conn:
            rows = conn.execute(
                "SELECT subscription_name FROM pglogical.show_subscription_status() WHERE status = 'down'"
            ).fetchall()
            for (name,) in rows:
                conn.execute("SELECT pglogical.alter_subscription_disable(%s, true)", (name,))
                conn.execute("SELECT pglogical.alter_subscription_enable(%s, true)", (name,))
                kicked.append(f"{spec.name}/{name}")
    return kicked


def wait_caught_up(lab: Lab, timeout: float, say: Any) -> bool:
    """Bottom-up: every slot on every provider confirms the provider's WAL position of now."""
    deadline = time.monotonic() + timeout
    for level in ("district", "region"):
        providers = [s for s in lab.specs.values() if s.level == level]
        targets: dict[str, str] = {}
        for spec in providers:
            with psycopg.connect(spec.conninfo, autocommit=True) as conn:
                row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
                targets[spec.name] = str(row[0]) if row else "0/0"
        pending = set(targets)
        while pending:
            for name in sorted(pending):
                spec = lab.specs[name]
                with psycopg.connect(spec.conninfo, autocommit=True) as conn:
                    row = conn.execute(
                        "SELECT count(*) FILTER (WHERE confirmed_flush_lsn >= %s::pg_lsn), count(*)"
                        " FROM pg_replication_slots WHERE database = current_database()"
                        " AND plugin = 'pglogical_output'",
                        (targets[name],),
                    ).fetchone()
                if row and row[1] >= 1 and row[0] == row[1]:
                    pending.discard(name)
            if pending and time.monotonic() > deadline:
                say(
                    f"  NOT caught up after {timeout:g} s: {sorted(pending)}; "
                    f"states {lab.subscription_states()}"
                )
                return False
            if pending:
                time.sleep(0.5)
    return True


def check(lab: Lab, result: Result) -> bool:
    """Exactly the approved rows of the districts below, at every region and at the nation."""
    ok = True
    below: dict[str, list[str]] = {"nation": list(DISTRICTS)}
    for region in REGIONS:
        below[region] = [d for d in DISTRICTS if lab.specs[d].upstream == region]
    for table, query, where in (
        ("technology", _tech_query, "WHERE approved"),
        ("approach", _approach_query, "WHERE status = 'approved'"),
    ):
        district_rows: dict[str, set[tuple[Any, ...]]] = {}
        totals = {}
        for d in DISTRICTS:
            district_rows[d] = _rows(lab.specs[d].conninfo, query(where))
            totals[d] = len(_rows(lab.specs[d].conninfo, query()))
        keys = [r[0] for rows in district_rows.values() for r in rows]
        if len(keys) != len(set(keys)):
            result.say(f"  {table}: the same key approved at two districts")
            ok = False
        result.say(
            f"  {table}: districts hold "
            + ", ".join(f"{d} {totals[d]} ({len(district_rows[d])} approved)" for d in DISTRICTS)
        )
        for node in ("nation", *REGIONS):
            want = set().union(*(district_rows[d] for d in below[node]))
            have_list = [tuple(r) for r in _rows_list(lab.specs[node].conninfo, query())]
            have = set(have_list)
            want_keys = {r[0] for r in want}
            have_keys = {r[0] for r in have}
            missing = want_keys - have_keys
            stale = have_keys - want_keys
            differing = {r[0] for r in (have - want)} - stale
            dupes = len(have_list) - len({r[0] for r in have_list})
            verdict = "exact" if not (missing or stale or differing or dupes) else "WRONG"
            result.say(
                f"  {table} at {node}: {len(have)} rows, expected {len(want)}: "
                f"{len(missing)} missing, {len(stale)} stale, {len(differing)} differing, "
                f"{dupes} duplicates -> {verdict}"
            )
            ok = ok and verdict == "exact"
    return ok


def _rows_list(conninfo: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        return [tuple(r) for r in conn.execute(query)]


def run(
    seed: int,
    seconds: float,
    port_base: int,
    keep: bool = False,
    kill: bool = True,
    kick: bool = True,
    patience: float = 20.0,
) -> Result:
    result = Result(seed)
    say = result.say
    rng = random.Random(seed)
    say(f"chaos: seed {seed}, {seconds:g} s of writes, ports {port_base}..{port_base + 3}")
    specs = tree(2, 2, port_base, [port_base + 1, port_base + 2], [port_base + 3])
    root = Path(tempfile.gettempdir()) / f"reconcile-chaos-{port_base}"
    lab = Lab(root, specs)
    proxy = NetProxy()
    links: dict[str, Link] = {}
    try:
        for spec in specs:
            if spec.level != "nation":
                links[spec.name] = proxy.add(spec.name, ("127.0.0.1", spec.port))

        def dsn(spec: NodeSpec) -> str:
            if spec.name in links:
                return f"host=127.0.0.1 port={links[spec.name].port} dbname={spec.dbname} user=postgres"
            return plain_dsn(spec)

        t0 = time.monotonic()
        lab.start()
        lab.create_databases()
        directory = root / "desired-state"
        state = lab.write_desired(directory, dsn=dsn)
        seconds_apply, actions, _ = converge(state, directory)
        lab.wait_replicating(timeout=180)
        say(f"  converged: {actions} actions, ready in {time.monotonic() - t0:.1f} s")

        faults = schedule(rng, sorted(links), seconds)
        victim = rng.choice(REGIONS)
        kill_at = rng.uniform(0.25, 0.5) * seconds
        down_for = rng.uniform(2.0, 5.0)
        say(
            f"  faults: {len(faults)} link faults; "
            + (f"kill {victim} server at {kill_at:.1f} s for {down_for:.1f} s" if kill else "no kill")
        )
        stop = threading.Event()
        writers = [Writer(lab.specs[d], random.Random(f"{seed}/{d}"), stop) for d in DISTRICTS]
        for w in writers:
            w.start()
        start = time.monotonic()
        events: list[tuple[float, str, Fault | None]] = []
        for f in faults:
            events.append((f.at, "begin", f))
            if f.duration:
                events.append((f.at + f.duration, "end", f))
        if kill:
            events += [(kill_at, "kill", None), (kill_at + down_for, "restart", None)]
        events.sort(key=lambda e: (e[0], e[1]))
        counts: dict[str, int] = {}
        for at, what, fault in events:
            if at >= seconds and what in ("begin", "kill"):
                continue
            pause = start + at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if what == "kill":
                _pg_ctl("stop", "-m", "immediate", "-D", str(lab.pgdata(lab.specs[victim].port)))
                say(f"  {time.monotonic() - start:5.1f} s: killed the {victim} server (immediate)")
            elif what == "restart":
                ensure_server(lab.specs[victim].port, lab.pgdata(lab.specs[victim].port))
                say(f"  {time.monotonic() - start:5.1f} s: restarted the {victim} server")
            elif fault is not None:
                link = links[fault.link]
                if what == "begin":
                    counts[fault.kind] = counts.get(fault.kind, 0) + 1
                    if fault.kind in ("drop", "refuse"):
                        link.partition(fault.kind)  # type: ignore[arg-type]
                    elif fault.kind == "reset":
                        link.reset()
                    elif fault.kind == "latency":
                        link.set_latency(up=0.15, down=0.15)
                    elif fault.kind == "bandwidth":
                        link.set_bandwidth(20_000, 20_000)
                else:
                    link.heal()
                    link.set_latency()
                    link.set_bandwidth()
        rest = start + seconds - time.monotonic()
        if rest > 0:
            time.sleep(rest)
        stop.set()
        for w in writers:
            w.join(30)
        for link in links.values():
            link.heal()
            link.set_latency()
            link.set_bandwidth()
        ensure_server(lab.specs[victim].port, lab.pgdata(lab.specs[victim].port))
        errors = [f"{w.name}: {w.error!r}" for w in writers if w.error is not None]
        ops: dict[str, int] = {}
        for w in writers:
            for k, v in w.ops.items():
                ops[k] = ops.get(k, 0) + v
        say(
            f"  writes: {sum(ops.values())} operations: "
            + ", ".join(f"{k} {v}" for k, v in sorted(ops.items()))
        )
        say("  link faults: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if errors:
            say("  WRITER ERRORS: " + "; ".join(errors))
        healed_at = time.monotonic()
        caught_up = wait_caught_up(lab, patience, lambda _line: None)
        if not caught_up and kick:
            kicked = kick_down_subscriptions(lab)
            say(
                f"  not caught up {patience:g} s after healing; restarted {len(kicked)} `down` "
                f"subscription(s) by disable+enable: {', '.join(kicked) or 'none'}"
            )
        if not caught_up:
            caught_up = wait_caught_up(lab, 240.0, say)
        states = lab.subscription_states()
        not_replicating = {k: v for k, v in states.items() if v != "replicating"}
        say(
            f"  healed: caught up {'yes' if caught_up else 'NO'} "
            f"{time.monotonic() - healed_at:.1f} s after healing; "
            + (
                "all subscriptions replicating"
                if not not_replicating
                else f"NOT replicating: {not_replicating}"
            )
        )
        verify_ok = run_verify(directory, say)
        exact = check(lab, result)
        result.ok = exact and caught_up and not errors and not not_replicating and verify_ok
        say(f"chaos seed {seed}: {'ZERO LOSS' if result.ok else 'FAILED'}")
        return result
    finally:
        proxy.close()
        if keep:
            say(f"  servers kept under {root}")
        else:
            lab.stop()


def run_verify(directory: Path, say: Any) -> bool:
    """`reconcile verify --repair`: the pglogical engine cannot deliver approvals and withdrawals."""
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", "verify", "--repair", "-d", str(directory)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if proc.returncode != 0 and "No such command" in proc.stderr:
        say("  reconcile verify: not available yet; checking without repair")
        return True
    summary = [line for line in proc.stdout.splitlines() if line.startswith(("Verify:", "Repair:"))]
    say(f"  reconcile verify --repair: exit {proc.returncode}; " + " ".join(summary))
    if proc.returncode not in (0, 2):
        say("  " + (proc.stderr or proc.stdout).strip().replace("\n", "\n  "))
        return False
    return True
