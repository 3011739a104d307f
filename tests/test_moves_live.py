"""Sites that move to another parent, on real servers: no tier above loses a row, every tier exact after."""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql
from support import cli, wait_for

from reconciler.model import Engine
from reconciler.verify.node import NodeSession, TableSide
from reconciler.verify.prune import PruneRefused, delete_moved

pytestmark = pytest.mark.server

# b moves r1 -> r2; r1 keeps a (KEEPS), or is left without children (LONE): then the
# nation's subscription to r1 is replaced (its forward_origins go from {all} to {}).
KEEPS = {"nation": None, "r1": "nation", "r2": "nation", "a": "r1", "b": "r1", "c": "r2"}
LONE = {"nation": None, "r1": "nation", "r2": "nation", "b": "r1", "c": "r2"}


def _log_sizes(net: Any, nodes: list[str]) -> dict[str, int]:
    return {n: int(net.execute(n, "SELECT (pg_stat_file(pg_current_logfile())).size")[0][0]) for n in nodes}


def _log_since(net: Any, node: str, offset: int) -> str:
    size = int(net.execute(node, "SELECT (pg_stat_file(pg_current_logfile())).size")[0][0])
    if size <= offset:
        return ""
    return str(
        net.execute(node, "SELECT pg_read_file(pg_current_logfile(), %s, %s)", (offset, size - offset))[0][0]
    )


def _move(net: Any, node: str, old: str, new: str) -> None:
    topology = net.dir / "topology.yaml"
    text = topology.read_text()
    moved = re.sub(rf"(\n  {node}:\n(?:    .*\n)*?    upstream: ){old}", rf"\g<1>{new}", text)
    assert moved != text
    topology.write_text(moved)


def _keys(net: Any, node: str, where: str = "true") -> set[str]:
    return {
        r[0]
        for r in net.execute(node, f"SELECT id::text FROM public.technology WHERE district = 'b' AND {where}")
    }


@pytest.mark.parametrize("shape", [KEEPS, LONE], ids=["old-parent-keeps-a-child", "old-parent-left-alone"])
def test_a_district_moved_with_a_writer_running_leaves_every_tier_exact(
    network: Any, shape: dict[str, str | None]
) -> None:
    net = network(shape)
    assert cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty").exit_code == 0
    # b's history: approved rows the writer never touches, and must never be missing at the nation.
    history = [str(uuid.uuid4()) for _ in range(40)]
    with psycopg.connect(net.dsn("b"), autocommit=True) as conn:
        for key in history:
            conn.execute(
                "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'h', 'b', true)",
                (key,),
            )
    wait_for(lambda: set(history) <= _keys(net, "nation"), "b's history at the nation", 60)
    logs = _log_sizes(net, ["b", "r1", "nation"])  # one server per level
    stop = threading.Event()
    errors: list[str] = []
    lowest = [len(history)]

    def writer() -> None:
        # Inserts (approved and drafts), approvals and withdrawals of its own rows, throughout.
        mine: list[str] = []
        rnd = random.Random(18)
        with psycopg.connect(net.dsn("b"), autocommit=True) as conn:
            while not stop.is_set():
                key = str(uuid.uuid4())
                conn.execute(
                    "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'w', 'b', %s)",
                    (key, rnd.random() < 0.5),
                )
                mine.append(key)
                if len(mine) > 5:
                    conn.execute(
                        "UPDATE public.technology SET approved = NOT approved, updated_at = now() WHERE id = %s",
                        (rnd.choice(mine[:-5]),),
                    )
                time.sleep(0.02)

    def watcher() -> None:
        # The nation never lacks a row of b's history, not even for a moment.
        with psycopg.connect(net.dsn("nation"), autocommit=True) as conn:
            while not stop.is_set():
                held = conn.execute(
                    "SELECT count(*) FROM public.technology WHERE id = ANY(%s::uuid[])", (history,)
                ).fetchone()
                assert held is not None
                lowest[0] = min(lowest[0], int(held[0]))
                time.sleep(0.05)

    threads = [threading.Thread(target=writer, daemon=True), threading.Thread(target=watcher, daemon=True)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        _move(net, "b", "r1", "r2")
        plan = cli("plan", "-d", str(net.dir))
        assert "move b: r1 -> r2" in plan.output, plan.output
        result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty", "--allow-destroy")
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    # The catalogs always converge. The rows may not, at the moment apply ends: the
    # writer flips approvals throughout, and pglogical carries no withdrawal
    # (REPLICATION-NOTES), so a row withdrawn before r2's copy can be left at the
    # nation; apply then says so and exits 1, and the verify --repair below closes it.
    assert result.exit_code in (0, 1), result.output
    assert "converged: catalogs and rows" in result.output or (
        result.exit_code == 1 and "catalogs converged; rows: verified" in result.output
    ), result.output
    assert lowest[0] == len(history), f"the nation lacked {len(history) - lowest[0]} of b's rows during apply"
    # The old parent holds none of b's history any more: removed there, not at the nation.
    assert not _keys(net, "r1") & set(history), result.output
    assert set(history) <= _keys(net, "nation") and set(history) <= _keys(net, "r2")
    # pglogical carries no approval or withdrawal (REPLICATION-NOTES): those, and only
    # those, are left for verify --repair; it deletes no row of b's history anywhere.
    stop.clear()
    watch = threading.Thread(target=watcher, daemon=True)
    watch.start()
    try:
        repaired = cli("verify", "-d", str(net.dir), "--repair")
    finally:
        stop.set()
        watch.join(10)
    assert repaired.exit_code == 0, repaired.output
    assert lowest[0] == len(history), f"the nation lacked b's rows during the repair\n{repaired.output}"
    verify = cli("verify", "-d", str(net.dir))
    assert verify.exit_code == 0, verify.output
    approved = _keys(net, "b", "approved")
    assert _keys(net, "r2") == approved and _keys(net, "nation") == approved
    assert not _keys(net, "r1")
    for node, offset in logs.items():
        text = _log_since(net, node, offset)
        assert "duplicate key" not in text, f"{node}: {text[-2000:]}"
    del errors


def test_a_retired_district_leaves_no_slot_and_its_rows_stay_upstream(network: Any) -> None:
    net = network({"nation": None, "region": "nation", "d1": "region", "d2": "region"})
    assert cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty").exit_code == 0
    keys = [str(uuid.uuid4()) for _ in range(5)]
    for key in keys:
        net.execute(
            "d2",
            "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'r', 'd2', true)",
            (key,),
        )

    def held(node: str) -> set[str]:
        return {
            r[0] for r in net.execute(node, "SELECT id::text FROM public.technology WHERE district = 'd2'")
        }

    wait_for(lambda: held("nation") == set(keys), "d2's rows at the nation", 60)
    assert net.execute("d2", "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()")[
        0
    ][0]
    topology = net.dir / "topology.yaml"
    text = topology.read_text()
    retired = re.sub(r"\n  d2:\n(?:    .*\n)*", "\n", text)
    assert retired != text and "d2" not in retired.split("nodes:")[1]
    topology.write_text(retired)
    plan = cli("plan", "-d", str(net.dir))
    assert "retire d2: no longer declared, region lets it go:" in plan.output, plan.output
    assert "its rows stay at region and the tiers above" in plan.output, plan.output
    # Destructive: nothing happens without --allow-destroy.
    held_back = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty")
    assert net.execute("region", "SELECT count(*) FROM pglogical.subscription")[0][0] == 2, held_back.output
    result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty", "--allow-destroy")
    assert result.exit_code == 0, result.output
    # No slot left on d2 for the region (no WAL held), no subscription to it anywhere.
    assert not net.execute(
        "d2", "SELECT slot_name FROM pg_replication_slots WHERE database = current_database()"
    )
    subs = net.execute("region", "SELECT sub_name FROM pglogical.subscription ORDER BY 1")
    assert [r[0] for r in subs] == ["region_from_d1"]
    assert held("region") == set(keys) and held("nation") == set(keys)
    status = cli("status", "-d", str(net.dir))
    assert status.exit_code == 0, status.output
    assert "No changes." in cli("plan", "-d", str(net.dir)).output


def test_prune_refuses_a_table_a_delete_would_reach_beyond_and_deletes_nothing(network: Any) -> None:
    net = network({"nation": None, "r1": "nation", "b": "r1"})
    assert cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty").exit_code == 0
    key = str(uuid.uuid4())
    net.execute(
        "r1",
        "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'm', 'b', true)",
        (key,),
    )
    session = NodeSession("r1", net.dsn("r1"), timeout=10, statement_timeout=30, writable=True)
    side = TableSide(session, "public.technology", "id", ("id",), sql.SQL("true"))
    try:
        # A cascading foreign key: its rows stay in their sets, their deletes would replicate.
        net.execute(
            "r1",
            "CREATE TABLE public.note (id uuid PRIMARY KEY REFERENCES public.technology ON DELETE CASCADE)",
        )
        net.execute("r1", "INSERT INTO public.note VALUES (%s)", (key,))
        with pytest.raises(
            PruneRefused, match=r"public\.technology.*foreign key note_id_fkey of (public\.)?note"
        ):
            delete_moved(side, [key], Engine.PGLOGICAL)
        net.execute("r1", "DROP TABLE public.note")
        # An enabled user trigger may write elsewhere; a disabled one is no reason to refuse.
        net.execute(
            "r1", "CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN OLD; END'"
        )
        net.execute(
            "r1",
            "CREATE TRIGGER audit BEFORE DELETE ON public.technology FOR EACH ROW EXECUTE FUNCTION public.noop()",
        )
        with pytest.raises(PruneRefused, match=r"public\.technology.*trigger audit"):
            delete_moved(side, [key], Engine.PGLOGICAL)
        assert _keys(net, "r1", f"id = '{key}'") == {key}
        sets = "SELECT count(*) FROM pglogical.replication_set_table WHERE set_reloid = 'public.technology'::regclass"
        before = net.execute("r1", sets)[0][0]
        assert before
        net.execute("r1", "ALTER TABLE public.technology DISABLE TRIGGER audit")
        assert delete_moved(side, [key], Engine.PGLOGICAL) == 1
        assert not _keys(net, "r1", f"id = '{key}'") and net.execute("r1", sets)[0][0] == before
    finally:
        session.close()


def test_a_move_without_allow_destroy_waits_whole_and_never_opens_a_second_path(network: Any) -> None:
    """The old path's drop is destructive: held back without --allow-destroy, and the new path's
    creation waits with it (two paths up would carry every new row of b to the nation twice)."""
    net = network(KEEPS)
    assert cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty").exit_code == 0
    _move(net, "b", "r1", "r2")
    result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty")
    assert result.exit_code == 0, result.output
    assert "waits with move b: r1 -> r2" in result.output, result.output
    assert net.execute("r2", "SELECT count(*) FROM pglogical.subscription WHERE sub_name = 'r2_from_b'") == [
        (0,)
    ]
    assert net.execute("r1", "SELECT count(*) FROM pglogical.subscription WHERE sub_name = 'r1_from_b'") == [
        (1,)
    ]
    moved = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty", "--allow-destroy")
    assert moved.exit_code == 0, moved.output
    assert net.execute("r2", "SELECT count(*) FROM pglogical.subscription WHERE sub_name = 'r2_from_b'") == [
        (1,)
    ]


def test_a_native_move_removes_the_old_parents_copy_without_a_delete_reaching_the_nation(
    network: Any,
) -> None:
    """Native engine: the moved district's history goes from its old region by deletes no
    publication publishes (deletes off for that one transaction); the nation sees no delete."""
    net = network(KEEPS)
    topology = net.dir / "topology.yaml"
    text = topology.read_text()
    assert "engine: pglogical" in text
    topology.write_text(text.replace("engine: pglogical", "engine: native"))
    assert cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty").exit_code == 0
    history = [str(uuid.uuid4()) for _ in range(30)]
    with psycopg.connect(net.dsn("b"), autocommit=True) as conn:
        for key in history:
            conn.execute(
                "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'h', 'b', true)",
                (key,),
            )
    wait_for(lambda: set(history) <= _keys(net, "nation"), "b's history at the nation", 60)
    # Every delete the nation's apply worker makes is noted (an ALWAYS trigger fires for it).
    for statement in (
        "CREATE TABLE public.deleted_here (id uuid)",
        "CREATE FUNCTION public.note_delete() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN INSERT INTO public.deleted_here VALUES (OLD.id); RETURN OLD; END$$",
        "CREATE TRIGGER note_delete BEFORE DELETE ON public.technology FOR EACH ROW"
        " EXECUTE FUNCTION public.note_delete()",
        "ALTER TABLE public.technology ENABLE ALWAYS TRIGGER note_delete",
    ):
        net.execute("nation", statement)
    _move(net, "b", "r1", "r2")
    result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty", "--allow-destroy")
    assert result.exit_code == 0, result.output
    assert not _keys(net, "r1") & set(history), result.output
    wait_for(lambda: set(history) <= _keys(net, "r2"), "b's history at r2", 30)
    # A delete that had reached the nation would be noted by now (r1 replicates within ms).
    key = str(uuid.uuid4())
    net.execute(
        "a",
        "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'probe', 'a', true)",
        (key,),
    )
    wait_for(
        lambda: key in {r[0] for r in net.execute("nation", "SELECT id::text FROM public.technology")},
        "r1's next change at the nation",
        30,
    )
    assert net.execute("nation", "SELECT count(*) FROM public.deleted_here") == [(0,)]
    assert set(history) <= _keys(net, "nation")
    assert cli("verify", "-d", str(net.dir)).exit_code == 0


def test_a_move_applied_without_its_repair_is_finished_by_the_next_apply(network: Any) -> None:
    """The rows a move leaves to settle (here b's history to remove at r1) are recorded before it
    runs: an apply that stops short of its repair (here --no-repair, as an interrupted one) leaves
    them owed, and the next apply, with no action to run, settles them."""
    net = network(KEEPS)
    assert cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty").exit_code == 0
    history = [str(uuid.uuid4()) for _ in range(20)]
    with psycopg.connect(net.dsn("b"), autocommit=True) as conn:
        for key in history:
            conn.execute(
                "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 'h', 'b', true)",
                (key,),
            )
    wait_for(lambda: set(history) <= _keys(net, "nation"), "b's history at the nation", 60)
    _move(net, "b", "r1", "r2")
    args = ("apply", "-d", str(net.dir), "--auto-approve", "--allow-dirty", "--allow-destroy")
    first = cli(*args, "--no-repair")
    assert first.exit_code == 0, first.output
    assert set(history) <= _keys(net, "r1")  # not removed yet
    plan = cli("plan", "-d", str(net.dir), "--detailed-exitcode")
    assert plan.exit_code == 2, plan.output
    # r2 held no rows: its subscription copied b's rows; r1 still holds b's history.
    assert "Rows still owed" in plan.output and "r1: public.approach, public.technology" in plan.output, (
        plan.output
    )
    second = cli(*args)
    assert second.exit_code == 0, second.output
    assert not _keys(net, "r1") & set(history), second.output
    assert set(history) <= _keys(net, "r2") and set(history) <= _keys(net, "nation")
    assert cli("plan", "-d", str(net.dir), "--detailed-exitcode").exit_code == 0
    assert cli("verify", "-d", str(net.dir)).exit_code == 0
