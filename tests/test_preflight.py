"""Preflight, pure: each blocker kind from constructed facts, no server."""

from __future__ import annotations

from typing import Any

from reconciler.inspect import ColumnFacts, InspectResult, InspectStats, NodeFacts, TableFacts
from reconciler.live import LiveNode
from reconciler.model import DesiredState, NodeCatalog
from reconciler.preflight import Blocker, preflight

STATE = DesiredState.model_validate(
    {
        "version": 1,
        "levels": ["district", "region"],
        "nodes": {
            "region": {"level": "region", "dsn": "host=10.0.0.1 dbname=r"},
            "district_a": {
                "level": "district",
                "upstream": "region",
                "dsn": "host=10.0.0.2 dbname=a",
            },
            "district_b": {
                "level": "district",
                "upstream": "region",
                "dsn": "host=10.0.0.2 dbname=b",
            },
        },
        "replication_sets": {
            "approved": {
                "tables": {
                    "public.technology": {"row_filter": "approved"},
                    "public.approach": {
                        "row_filter": "status = 'approved'",
                        "columns": ["id", "title", "status"],
                    },
                }
            }
        },
    }
)

UUID = ColumnFacts(type="uuid", not_null=True)
TEXT = ColumnFacts(type="text", not_null=True)


def good_tables() -> dict[str, TableFacts]:
    return {
        "public.technology": TableFacts(
            exists=True,
            columns={
                "id": UUID,
                "title": TEXT,
                "approved": ColumnFacts(type="boolean", not_null=True),
            },
            pk_columns=("id",),
            pk_types=("uuid",),
            replica_identity="d",
        ),
        "public.approach": TableFacts(
            exists=True,
            columns={"id": UUID, "title": TEXT, "status": TEXT, "note": ColumnFacts(type="text", not_null=False)},
            pk_columns=("id",),
            pk_types=("uuid",),
            replica_identity="d",
        ),
    }


def facts(node: str, **changes: Any) -> NodeFacts:
    values: dict[str, Any] = {
        "node": node,
        "state": LiveNode(),
        "desired": NodeCatalog(),
        "server_version": "15.20",
        "server_version_num": 150020,
        "pglogical_version": "2.4.2",
        "wal_level": "logical",
        "shared_preload_libraries": "pglogical",
        "system_identifier": f"sysid-{STATE.nodes[node].level}",
        "database": node,
        "database_oid": 16384 + sorted(STATE.nodes).index(node),
        "tables": good_tables(),
        "filter_problems": [],
        "fingerprint": "0" * 64,
        "stats": InspectStats(connections=1, round_trips=1, seconds=0.01),
    }
    values.update(changes)
    return NodeFacts(**values)


def result(**per_node: NodeFacts) -> InspectResult:
    all_facts = {n: facts(n) for n in STATE.nodes}
    all_facts.update(per_node)
    return InspectResult(facts=all_facts, unreachable={})


def with_table(name: str, **changes: Any) -> dict[str, TableFacts]:
    tables = good_tables()
    tables[name] = tables[name].model_copy(update=changes)
    return tables


def test_healthy_network_has_no_blockers() -> None:
    assert preflight(STATE, result()) == []


def test_unreachable_nodes_are_not_blockers() -> None:
    r = InspectResult(facts={"region": facts("region")}, unreachable={"district_a": "refused"})
    assert preflight(STATE, r) == []


def test_pglogical_not_installed() -> None:
    blockers = preflight(STATE, result(region=facts("region", pglogical_version=None)))
    assert blockers == [
        Blocker(node="region", message="pglogical extension is not installed in this database")
    ]


def test_pglogical_not_preloaded() -> None:
    r = result(district_a=facts("district_a", shared_preload_libraries="pg_stat_statements"))
    [b] = preflight(STATE, r)
    assert (b.node, b.table) == ("district_a", None)
    assert "shared_preload_libraries" in b.message and "pg_stat_statements" in b.message


def test_preloaded_among_others_with_quotes_is_fine() -> None:
    r = result(region=facts("region", shared_preload_libraries='pg_stat_statements, "pglogical"'))
    assert preflight(STATE, r) == []


def test_native_engine_does_not_need_pglogical() -> None:
    native = STATE.model_copy(update={"engine": "native"})
    r = result(region=facts("region", pglogical_version=None, shared_preload_libraries=""))
    assert preflight(native, r) == []


def test_wal_level_not_logical() -> None:
    [b] = preflight(STATE, result(region=facts("region", wal_level="replica")))
    assert b.node == "region" and "wal_level is replica" in b.message


def test_missing_table_reported_once_even_with_filter_problem() -> None:
    tables = good_tables()
    tables["public.technology"] = TableFacts(exists=False)
    problems = ['public.technology: relation "public.technology" does not exist']
    r = result(district_a=facts("district_a", tables=tables, filter_problems=problems))
    assert preflight(STATE, r) == [
        Blocker(node="district_a", table="public.technology", message="table does not exist")
    ]


def test_no_primary_key() -> None:
    r = result(
        district_a=facts("district_a", tables=with_table("public.technology", pk_columns=(), pk_types=()))
    )
    [b] = preflight(STATE, r)
    assert (b.node, b.table) == ("district_a", "public.technology")
    assert "no primary key" in b.message


def test_primary_key_not_uuid() -> None:
    bigint = ColumnFacts(type="bigint", not_null=True)
    columns = {**good_tables()["public.technology"].columns, "id": bigint}
    tables = with_table("public.technology", columns=columns, pk_types=("bigint",))
    blockers = preflight(STATE, result(region=facts("region", tables=tables)))
    assert (
        Blocker(
            node="region",
            table="public.technology",
            message="primary key column id is bigint, not uuid",
        )
        in blockers
    )
    # The subscriber's key type now also differs from its providers': on the same table.
    assert {(b.node, b.table) for b in blockers} == {("region", "public.technology")}


def test_column_list_lacks_primary_key_column() -> None:
    tables = with_table("public.approach", pk_columns=("id", "note"), pk_types=("uuid", "uuid"))
    blockers = preflight(STATE, result(district_b=facts("district_b", tables=tables)))
    assert blockers == [
        Blocker(
            node="district_b",
            table="public.approach",
            message="column list of set approved lacks primary key column note",
        )
    ]


def test_column_list_names_missing_column() -> None:
    columns = {"id": UUID, "status": TEXT}
    tables = with_table("public.approach", columns=columns)
    blockers = preflight(STATE, result(district_b=facts("district_b", tables=tables)))
    assert (
        Blocker(
            node="district_b",
            table="public.approach",
            message="column list of set approved names missing column title",
        )
        in blockers
    )


def test_filter_column_allows_null() -> None:
    tables = with_table(
        "public.technology",
        columns={"id": UUID, "title": TEXT, "approved": ColumnFacts(type="boolean", not_null=False)},
    )
    blockers = preflight(STATE, result(district_a=facts("district_a", tables=tables)))
    assert blockers == [
        Blocker(
            node="district_a",
            table="public.technology",
            message="row filter of set approved reads column approved, which allows NULL",
        )
    ]


def test_filter_problem_from_normalisation() -> None:
    problems = ['public.approach: column "stauts" does not exist']
    r = result(region=facts("region", filter_problems=problems))
    assert preflight(STATE, r) == [
        Blocker(
            node="region",
            table="public.approach",
            message='row filter: column "stauts" does not exist',
        )
    ]


def test_columns_differ_between_provider_and_subscriber() -> None:
    tables = with_table(
        "public.technology",
        columns={
            "id": UUID,
            "title": ColumnFacts(type="character varying(20)", not_null=True),
            "approved": ColumnFacts(type="boolean", not_null=True),
        },
    )
    blockers = preflight(STATE, result(district_a=facts("district_a", tables=tables)))
    assert blockers == [
        Blocker(
            node="region",
            provider="district_a",
            table="public.technology",
            message="edge district_a -> region: column title is character varying(20) at district_a but"
            " text at region; fix: a migration that gives it one type on both ends",
        )
    ]


def test_columns_outside_the_column_list_may_differ() -> None:
    # approach replicates (id, title, status): a district-only column is fine.
    tables = with_table("public.approach", columns={"id": UUID, "title": TEXT, "status": TEXT})
    assert preflight(STATE, result(region=facts("region", tables=tables))) == []


def test_missing_column_at_subscriber_blocks_each_edge_and_names_the_fix() -> None:
    tables = with_table(
        "public.technology", columns={"id": UUID, "approved": ColumnFacts(type="boolean", not_null=True)}
    )
    blockers = preflight(STATE, result(region=facts("region", tables=tables)))
    assert {(b.node, b.provider) for b in blockers} == {("region", "district_a"), ("region", "district_b")}
    assert {b.message for b in blockers} == {
        f"edge {d} -> region: {d} sends column title (text), which region lacks; fix: add it at region"
        f" and every tier above before {d} sends it (a migration: apply runs it top-down), or drop it at"
        f" {d} (a leaves-first migration)"
        for d in ("district_a", "district_b")
    }


def test_a_subscriber_may_hold_a_column_its_provider_does_not_send_if_nullable_or_defaulted() -> None:
    base = {"id": UUID, "title": TEXT, "approved": ColumnFacts(type="boolean", not_null=True)}
    for extra, blocked in (
        (ColumnFacts(type="text", not_null=False), False),
        (ColumnFacts(type="text", not_null=True, has_default=True), False),
        (ColumnFacts(type="text", not_null=True), True),
    ):
        tables = with_table("public.technology", columns={**base, "summary": extra})
        blockers = preflight(STATE, result(region=facts("region", tables=tables)))
        assert bool(blockers) is blocked, (extra, blockers)
        assert all("summary NOT NULL without a default" in b.message for b in blockers)


def test_two_levels_on_one_server_names_both_nodes() -> None:
    r = result(region=facts("region", system_identifier="sysid-district"))
    blockers = preflight(STATE, r)
    assert {b.node for b in blockers} == {"region", "district_a", "district_b"}
    by_node = {(b.node, b.message.split(" (")[0]) for b in blockers}
    assert ("region", "same PostgreSQL server as district_a") in by_node
    assert ("district_a", "same PostgreSQL server as region") in by_node
    assert all("system_identifier sysid-district" in b.message for b in blockers)


def test_same_level_may_share_a_server() -> None:
    # district_a and district_b share sysid-district in every test: never a blocker.
    assert preflight(STATE, result()) == []


def test_blockers_sorted_and_deterministic() -> None:
    r = result(
        region=facts("region", wal_level="minimal", pglogical_version=None),
        district_b=facts("district_b", tables={"public.technology": TableFacts(exists=False)}),
    )
    first = preflight(STATE, r)
    assert first == preflight(STATE, r)
    keys = [(b.node, b.table or "", b.message) for b in first]
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))


def test_two_nodes_reaching_one_database_block_both_by_name() -> None:
    # district_b's connection reached district_a's database (same server, same oid).
    same = facts("district_b", database="district_a", database_oid=facts("district_a").database_oid)
    blockers = preflight(STATE, result(district_b=same))
    assert [b.node for b in blockers] == ["district_a", "district_b"]
    assert "reaches the same database as node district_b" in blockers[0].message
    assert "reaches the same database as node district_a" in blockers[1].message


def test_same_database_oid_on_another_server_is_not_one_database() -> None:
    # Oids repeat across servers; only (system_identifier, oid) names one database.
    other = facts("region", database_oid=facts("district_a").database_oid)
    assert preflight(STATE, result(region=other)) == []
