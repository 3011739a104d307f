"""Rebuilding a parent (issue 18, item 4): a region replaced by an empty server, on real servers.

The region's database is dropped the way a lost server goes (its districts
keep the slots it streamed from, its own slot for the nation goes with it)
and created again empty with the schema, at the same DSN. The districts
write on meanwhile. Then plan and apply must re-create the region's node,
sets and subscriptions, bring its rows back from its districts by copy, and
replace the nation's subscription to it, and the nation must receive exactly
the rows it really lacked: the region's initial copies must not reach it as
inserts or updates of rows it already holds.

Rows written at the nation are counted without triggers in two ways: each
row's `xmin` (a row the nation rewrote has a new one, an insert a new key,
a delete a key gone), and the `n_tup_ins + n_tup_upd + n_tup_del` deltas of
pg_stat_user_tables on the replicated tables (every write of every backend,
also ones later overwritten).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from conftest import DEFAULT_SCHEMA
from support import cli, wait_for

from reconciler import sandbox_databases
from reconciler.sandbox_databases import create_database, drop_database

pytestmark = pytest.mark.server

SMALL: dict[str, str | None] = {"nation": None, "region": "nation", "d1": "region", "d2": "region"}
TABLES = ("technology", "approach")
# What each table sends upstream (replication.yaml): its filter.
APPROVED = {"technology": "approved", "approach": "status = 'approved'"}
HISTORY = 20000  # rows of technology per district before the region is lost
STATS = (
    "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables"
    " WHERE schemaname = 'public' AND relname = ANY(%s)"
)


def write(net: Any, node: str, approved: int, drafts: int) -> None:
    """Rows at a district: `approved` of each table that pass the filter, `drafts` that do not."""
    for i in range(approved + drafts):
        ok = i < approved
        net.execute(
            node,
            "INSERT INTO public.technology (id, title, district, approved) VALUES (%s, 't', %s, %s)",
            (str(uuid.uuid4()), node, ok),
        )
        net.execute(
            node,
            "INSERT INTO public.approach (id, title, status, district, internal_note)"
            " VALUES (%s, 'a', %s, %s, 'stays here')",
            (str(uuid.uuid4()), "approved" if ok else "draft", node),
        )


def keys(net: Any, node: str, table: str, where: str = "true") -> set[str]:
    return {r[0] for r in net.execute(node, f"SELECT id::text FROM public.{table} WHERE {where}")}


def approved_below(net: Any, table: str) -> set[str]:
    return keys(net, "d1", table, APPROVED[table]) | keys(net, "d2", table, APPROVED[table])


def versions(net: Any, node: str) -> dict[tuple[str, str], str]:
    """(table, key) -> the row version's xmin: a rewritten row gets a new one."""
    found: dict[tuple[str, str], str] = {}
    for table in TABLES:
        for key, xmin in net.execute(node, f"SELECT id::text, xmin::text FROM public.{table}"):
            found[(table, key)] = xmin
    return found


def writes(net: Any, node: str) -> int:
    net.execute(node, "SELECT pg_stat_clear_snapshot()")
    return int(net.execute(node, STATS, (list(TABLES),))[0][0])


def applying(net: Any, node: str) -> bool:
    """A pglogical apply worker runs in the node's database."""
    rows = net.execute(
        node,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type LIKE 'pglogical apply %%'",
    )
    return bool(rows[0][0])


def log_size(net: Any, node: str) -> int:
    return int(net.execute(node, "SELECT (pg_stat_file(pg_current_logfile())).size")[0][0])


def log_since(net: Any, node: str, offset: int) -> str:
    size = log_size(net, node)
    if size <= offset:
        return ""
    return str(
        net.execute(node, "SELECT pg_read_file(pg_current_logfile(), %s, %s)", (offset, size - offset))[0][0]
    )


def all_replicated(net: Any, node: str) -> bool:
    return all(keys(net, node, t) == approved_below(net, t) for t in TABLES)


def test_a_region_rebuilt_from_an_empty_server_gets_its_rows_back_and_the_nation_only_what_it_lacked(
    network: Any, pg_servers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = network(parents=SMALL)
    applied = cli("apply", "-d", str(net.dir), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    write(net, "d1", approved=4, drafts=2)
    write(net, "d2", approved=3, drafts=1)
    for district in ("d1", "d2"):
        # History enough that the region's initial copies take a while (a race to lose).
        net.execute(
            district,
            "INSERT INTO public.technology (title, district, approved)"
            " SELECT 'h', %s, n %% 10 > 0 FROM generate_series(1, %s) AS n",
            (district, HISTORY),
        )
    wait_for(lambda: all_replicated(net, "nation"), "the districts' approved rows at the nation")
    assert all_replicated(net, "region")

    # The region's server is lost: its database goes without a word to anyone
    # (the districts keep the slots it streamed from), and an empty one with the
    # schema takes its place at the same DSN.
    dbname = net.execute("region", "SELECT current_database()")[0][0]
    port = pg_servers.port(1)
    net.close()
    with monkeypatch.context() as patch:
        patch.setattr(sandbox_databases, "_drop_subscriptions", lambda port, dbname: None)
        drop_database(port, dbname)
    # The districts write on while the region is away: these rows the nation really lacks.
    write(net, "d1", approved=2, drafts=1)
    write(net, "d2", approved=1, drafts=1)
    assert create_database(port, dbname, DEFAULT_SCHEMA.read_text())
    lacking = {(t, k) for t in TABLES for k in approved_below(net, t) - keys(net, "nation", t)}
    assert len(lacking) == 2 * 3  # 3 approved rows of each table

    before = versions(net, "nation")
    stats_before = writes(net, "nation")
    log_at = log_size(net, "nation")

    plan = cli("plan", "-d", str(net.dir), "--format", "json")
    assert plan.exit_code in (0, 2), plan.output
    actions = json.loads(plan.stdout)["actions"]
    planned = {(a["node"], a["kind"], a["subject"]): a for a in actions}
    # The region is built again, its districts' rows come by initial copy; the
    # nation's subscription, whose slot went with the old region, is replaced
    # without a copy (the nation holds the rows) and repaired by key.
    assert ("region", "create_node", "node region") in planned, sorted(planned)
    for district in ("d1", "d2"):
        create = planned[("region", "create_subscription", f"subscription region_from_{district}")]
        assert create["data_movement"] == "initial_copy", create
    replace = planned[("nation", "replace_subscription", "subscription nation_from_region")]
    assert "is missing on region: re-copy needed" in replace["description"], replace
    assert replace["data_movement"] == "resync_needed", replace

    result = cli("apply", "-d", str(net.dir), "--auto-approve", "--allow-destroy")
    assert result.exit_code == 0, result.output
    assert "converged: catalogs and rows" in result.output, result.output
    assert f"{len(lacking)} row(s) repaired" in result.output, result.output

    # The region holds exactly its districts' approved rows again; so does the nation.
    for table in TABLES:
        assert keys(net, "region", table) == approved_below(net, table), table
        assert keys(net, "nation", table) == approved_below(net, table), table
    verify = cli("verify", "-d", str(net.dir))
    assert verify.exit_code == 0, verify.output
    assert cli("plan", "-d", str(net.dir), "--detailed-exitcode").exit_code == 0

    # Rows written after the rebuild flow all the way up: the new links work.
    write(net, "d2", approved=1, drafts=1)
    wait_for(lambda: all_replicated(net, "nation"), "a row written after the rebuild at the nation", 30)

    after = versions(net, "nation")
    rewritten = {k for k, xmin in after.items() if k in before and before[k] != xmin}
    inserted = set(after) - set(before)
    deleted = set(before) - set(after)
    fresh = {(t, k) for t in TABLES for k in approved_below(net, t)} - set(before) - lacking
    # pglogical's apply worker never reports its table counters while it runs
    # (no pgstat_report_stat in pglogical_apply.c): they reach pg_stat_user_tables
    # when it exits. Stopping it (disable, immediate) and starting it again flushes them.
    net.execute("nation", "SELECT pglogical.alter_subscription_disable('nation_from_region', true)")
    wait_for(lambda: not applying(net, "nation"), "the nation's apply worker to exit", 15)
    counted = writes(net, "nation") - stats_before
    net.execute("nation", "SELECT pglogical.alter_subscription_enable('nation_from_region', true)")
    text = log_since(net, "nation", log_at)
    conflicts = [line for line in text.splitlines() if "CONFLICT" in line]
    print(
        f"really lacking {len(lacking)}; at the nation: {len(inserted)} inserted ({len(fresh)} of them"
        f" written after the rebuild), {len(rewritten)} rewritten, {len(deleted)} deleted;"
        f" n_tup_ins + n_tup_upd + n_tup_del delta {counted}; CONFLICT lines {len(conflicts)}"
    )
    assert inserted == lacking | fresh, (sorted(inserted - lacking - fresh), sorted(lacking - inserted))
    assert not rewritten, f"{len(rewritten)} row(s) the nation already held were written again"
    assert not deleted, sorted(deleted)
    assert counted == len(lacking) + len(fresh), counted
    assert "duplicate key" not in text, text[-3000:]
    assert not conflicts, "\n".join(conflicts[:10])
    wait_for(lambda: applying(net, "nation"), "the nation's apply worker to start again", 15)
