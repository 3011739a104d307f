"""Pure: the server log's tail read per subscription, and the cause and remedy judged for each broken edge."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from reconciler.health.causes import Cause, Diagnosis, diagnose, rollout
from reconciler.health.judge import judge
from reconciler.health.readings import NodeReading, SlotReading, WorkerReading
from reconciler.inspect.server_log import WorkerLog, native_worker, parse, pglogical_worker
from reconciler.load import load_desired_texts
from reconciler.model import DesiredState
from reconciler.render.prometheus import render_prometheus
from reconciler.topology import edges

# As measured on PostgreSQL 15 + pglogical 2.4.2 (a column the subscriber lacks),
# with a same-named subscription of another database (16400) on the server.
PGLOGICAL_LOG = """\
2026-12-01 11:22:37.067 UTC [4196] LOG:  starting apply for subscription nation_from_region
2026-12-01 11:22:37.385 UTC [4196] ERROR:  unknown column name extra
2026-12-01 11:22:37.385 UTC [4196] CONTEXT:  apply INSERT in commit before 0/19ACD28, xid 744 committed at \
2026-12-01 11:22:37.385224+00 (action #2) from node replorigin 1
2026-12-01 11:22:37.386 UTC [4196] LOG:  apply worker [4196] at slot 1 generation 1 exiting with error
2026-12-01 11:22:37.390 UTC [3993] LOG:  background worker "pglogical apply 16384:2966115277" (PID 4196) \
exited with exit code 1
2026-12-01 11:22:38.001 UTC [4300] LOG:  starting apply for subscription nation_from_region
2026-12-01 11:22:38.100 UTC [4300] ERROR:  duplicate key value violates unique constraint "x"
2026-12-01 11:22:38.101 UTC [3993] LOG:  background worker "pglogical apply 16400:77" (PID 4300) \
exited with exit code 1
	a continuation line of a multi-line statement
"""

NATIVE_LOG = """\
2026-12-01 12:00:00.000 UTC [500] LOG:  logical replication apply worker for subscription "s1" has started
2026-12-01 12:00:01.000 UTC [500] ERROR:  duplicate key value violates unique constraint "t_code_key"
2026-12-01 12:00:01.000 UTC [500] DETAIL:  Key (code)=(7) already exists.
2026-12-01 12:00:01.000 UTC [500] CONTEXT:  processing remote data for replication origin "pg_16500" \
during "INSERT" for replication target relation "public.t" in transaction 740, finished at 0/1A2B3C4
2026-12-01 12:00:01.010 UTC [90] LOG:  background worker "logical replication worker" (PID 500) exited \
with exit code 1
"""


def test_pglogical_worker_is_matched_by_database_and_subscription_oid() -> None:
    lines = parse(PGLOGICAL_LOG, "Etc/UTC")
    mine = pglogical_worker(lines, 16384, 2966115277, "nation_from_region")
    assert mine is not None
    assert mine.error == "unknown column name extra"
    assert mine.failed_lsn == "0/19ACD28"
    assert mine.context is not None and "xid 744" in mine.context
    assert mine.failures == 1
    assert mine.failed_at == datetime(2026, 12, 1, 11, 22, 37, 390000, tzinfo=UTC)
    # The other database's worker of the same name is not this one.
    other = pglogical_worker(lines, 16400, 77, "nation_from_region")
    assert other is not None and other.error is not None and other.error.startswith("duplicate key")
    assert pglogical_worker(lines, 16384, 1, "elsewhere") is None


def test_native_worker_is_matched_by_name_and_origin() -> None:
    lines = parse(NATIVE_LOG, "UTC")
    found = native_worker(lines, 16500, "s1")
    assert found is not None and found.failures == 1 and found.failed_lsn == "0/1A2B3C4"
    # Same name, another subscription's origin: not it.
    assert native_worker(lines, 1, "s1") is None


def test_an_unknown_time_zone_keeps_the_lines_without_times() -> None:
    lines = parse(PGLOGICAL_LOG, "Not/AZone")
    assert lines and all(line.at is None for line in lines)


STATE = """
version: 1
levels: [district, region, nation]
nodes:
  nation: {level: nation, dsn: "host=n dbname=nation"}
  region: {level: region, upstream: nation, dsn: "host=r dbname=region"}
  d1: {level: district, upstream: region, dsn: "host=d dbname=d1"}
replication_sets:
  approved:
    tables:
      public.technology: {row_filter: approved}
monitoring:
  restart_after_seconds: 5
"""
NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
COLUMNS = {"public.technology": {"id": "uuid", "approved": "boolean"}}


def state() -> DesiredState:
    return load_desired_texts({"topology.yaml": STATE}, "test")


def node(name: str, **extra: object) -> NodeReading:
    fields: dict[str, object] = {
        "node": name,
        "reachable": True,
        "pglogical_version": "2.4.2",
        "columns": COLUMNS,
        "read_at": NOW,
    }
    fields.update(extra)
    return NodeReading.model_validate(fields)


def slot(subscription: str, wal_status: str = "reserved") -> SlotReading:
    return SlotReading(
        slot=f"pgl_{subscription}",
        subscription=subscription,
        active=False,
        wal_status=wal_status,
        safe_wal_size=None,
        retained_bytes=None if wal_status == "lost" else 100,
        lag_bytes=100,
        lag_seconds=1.0,
    )


def down_worker(subscription: str, log: WorkerLog | None = None, **extra: object) -> WorkerReading:
    fields: dict[str, object] = {"subscription": subscription, "enabled": True, "worker_running": False}
    return WorkerReading.model_validate({**fields, "log": log, **extra})


def diagnosis_for(
    readings: dict[str, NodeReading], status: str = "down", wal_status: str = "reserved"
) -> Diagnosis:
    s = state()
    edge = next(e for e in edges(s) if e.subscriber == "region")
    return diagnose(s, edge, readings, slot(edge.subscription, wal_status), status)


def test_a_column_the_provider_sends_names_table_column_and_top_down_fix() -> None:
    s = state()
    sub = next(e for e in edges(s) if e.subscriber == "region").subscription
    wider = {"public.technology": {**COLUMNS["public.technology"], "extra": "text"}}
    log = WorkerLog(error="unknown column name extra", failed_at=datetime(2026, 12, 1, 11, 59, 0, tzinfo=UTC))
    readings = {
        "d1": node("d1", columns=wider, slots=(slot(sub),)),
        "region": node("region", subscriptions={sub: "down"}, workers={sub: down_worker(sub, log)}),
        "nation": node("nation"),
    }
    report = judge(s, readings)
    edge = next(e for e in report.edges if e.subscriber == "region")
    assert edge.cause == "schema_mismatch"
    assert edge.reason is not None and "public.technology.extra" in edge.reason and "d1" in edge.reason
    assert edge.remedy is not None
    assert edge.remedy.startswith("add column extra text to public.technology at nation, then region")
    assert edge.down_seconds == 60.0
    assert edge.retry_at == datetime(2026, 12, 1, 12, 2, 0, tzinfo=UTC)
    assert rollout(s, readings, "region", "public.technology", "extra") == ["nation", "region"]


def test_once_the_column_is_everywhere_the_remedy_is_a_restart() -> None:
    s = state()
    sub = next(e for e in edges(s) if e.subscriber == "region").subscription
    log = WorkerLog(error="unknown column name extra", failed_at=datetime(2026, 12, 1, 11, 59, 0, tzinfo=UTC))
    readings = {
        "d1": node("d1", slots=(slot(sub),)),
        "region": node("region", subscriptions={sub: "down"}, workers={sub: down_worker(sub, log)}),
        "nation": node("nation"),
    }
    edge = next(e for e in judge(s, readings).edges if e.subscriber == "region")
    assert edge.cause == "worker_not_running"
    assert edge.remedy is not None and edge.remedy.startswith("restart: `reconcile apply` restarts it")
    assert "12:02:00" in edge.remedy  # pglogical's own retry, at the latest


def test_each_cause_has_its_remedy() -> None:
    s = state()
    sub = next(e for e in edges(s) if e.subscriber == "region").subscription
    up = {"nation": node("nation")}

    def region(**extra: object) -> NodeReading:
        return node("region", subscriptions={sub: "down"}, **extra)

    lost = diagnosis_for({**up, "d1": node("d1"), "region": region()}, wal_status="lost")
    assert lost.cause is Cause.SLOT_LOST and "re-copy needed" in lost.remedy

    unreadable = diagnosis_for(
        {
            **up,
            "d1": node("d1"),
            "region": region(
                workers={sub: down_worker(sub)},
                log_problem="cannot read the server log: role x may not call pg_current_logfile",
            ),
        }
    )
    assert unreadable.cause is Cause.UNKNOWN
    assert unreadable.reason.startswith("unknown: cannot read the server log")

    stuck = diagnosis_for(
        {
            **up,
            "d1": node("d1"),
            "region": node(
                "region",
                subscriptions={sub: "initializing"},
                workers={
                    sub: WorkerReading(
                        subscription=sub,
                        enabled=True,
                        worker_running=True,
                        tables_not_ready=("public.technology (d)",),
                    )
                },
            ),
        },
        status="initializing",
    )
    assert stuck.cause is Cause.TABLES_NOT_READY and "public.technology (d)" in stuck.reason

    conflict = WorkerLog(
        error='duplicate key value violates unique constraint "t_code_key"',
        context="apply INSERT in commit before 0/1",
        failed_lsn="0/1",
    )
    poisoned = diagnosis_for(
        {**up, "d1": node("d1"), "region": region(workers={sub: down_worker(sub, conflict)})}
    )
    assert poisoned.cause is Cause.CONFLICT
    assert "reconcile skip region d1" in poisoned.remedy

    gone = diagnosis_for(
        {**up, "d1": NodeReading(node="d1", reachable=False, reason="connection refused"), "region": region()}
    )
    assert gone.cause is Cause.PROVIDER_UNREACHABLE

    lost_link = WorkerLog(
        error="could not receive data from WAL stream: server closed the connection unexpectedly"
    )
    dropped = diagnosis_for(
        {**up, "d1": node("d1"), "region": region(workers={sub: down_worker(sub, lost_link)})}
    )
    assert dropped.cause is Cause.CONNECTION_LOST and dropped.remedy.startswith("restart")

    native_counts = diagnosis_for(
        {**up, "d1": node("d1"), "region": region(workers={sub: down_worker(sub, apply_errors=3)})}
    )
    assert "3 apply error(s)" in native_counts.reason


def test_a_replicating_edge_whose_provider_has_an_extra_column_warns() -> None:
    s = state()
    sub = next(e for e in edges(s) if e.subscriber == "region").subscription
    wider = {"public.technology": {**COLUMNS["public.technology"], "extra": "text"}}
    readings = {
        "d1": node("d1", columns=wider, slots=(slot(sub),)),
        "region": node("region", subscriptions={sub: "replicating"}),
        "nation": node("nation"),
    }
    edge = next(e for e in judge(s, readings).edges if e.subscriber == "region")
    assert edge.cause is None
    assert any("extra" in f.message and "breaks at the next change" in f.message for f in edge.findings)


def test_metrics_carry_the_cause_the_down_time_and_the_worker() -> None:
    s = state()
    sub = next(e for e in edges(s) if e.subscriber == "region").subscription
    wider = {"public.technology": {**COLUMNS["public.technology"], "extra": "text"}}
    log = WorkerLog(
        error="unknown column name extra", failed_at=datetime(2026, 12, 1, 11, 59, 0, tzinfo=UTC), failures=2
    )
    readings = {
        "d1": node("d1", columns=wider, slots=(slot(sub),)),
        "region": node("region", subscriptions={sub: "down"}, workers={sub: down_worker(sub, log)}),
        "nation": node("nation"),
    }
    text = render_prometheus(judge(s, readings), seconds=0.1, timestamp=0.0)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    edge = (("provider", "d1"), ("subscriber", "region"))
    assert samples[("reconcile_edge_cause", tuple(sorted((*edge, ("cause", "schema_mismatch")))))] == 1
    assert samples[("reconcile_edge_cause", tuple(sorted((*edge, ("cause", "none")))))] == 0
    assert samples[("reconcile_edge_down_seconds", edge)] == 60
    assert samples[("reconcile_edge_worker_running", edge)] == 0
    assert samples[("reconcile_edge_apply_errors_total", edge)] == 2


# pglogical's manager starts the worker again and it fails on the same commit
# (its origin never moved): same error, same LSN, twice in the tail.
STUCK_LOG = """\
2026-12-01 11:30:00.000 UTC [4500] LOG:  starting apply for subscription nation_from_region
2026-12-01 11:30:00.100 UTC [4500] ERROR:  new row for relation "technology" violates check constraint "no_poison"
2026-12-01 11:30:00.100 UTC [4500] CONTEXT:  apply INSERT in commit before 0/2000100, xid 900 committed at \
2026-12-01 11:29:59+00 (action #2) from node replorigin 1
2026-12-01 11:30:00.110 UTC [3993] LOG:  background worker "pglogical apply 16384:2966115277" (PID 4500) \
exited with exit code 1
2026-12-01 11:30:05.000 UTC [4510] LOG:  starting apply for subscription nation_from_region
2026-12-01 11:30:05.100 UTC [4510] ERROR:  new row for relation "technology" violates check constraint "no_poison"
2026-12-01 11:30:05.100 UTC [4510] CONTEXT:  apply INSERT in commit before 0/2000100, xid 900 committed at \
2026-12-01 11:29:59+00 (action #2) from node replorigin 1
2026-12-01 11:30:05.110 UTC [3993] LOG:  background worker "pglogical apply 16384:2966115277" (PID 4510) \
exited with exit code 1
"""


def test_the_same_error_at_the_same_commit_twice_is_a_repeat_with_its_xid() -> None:
    found = pglogical_worker(parse(STUCK_LOG, "UTC"), 16384, 2966115277, "nation_from_region")
    assert found is not None
    assert (found.repeats, found.failed_lsn, found.failed_xid) == (2, "0/2000100", 900)
    assert found.repeating_since == datetime(2026, 12, 1, 11, 30, 0, 100000, tzinfo=UTC)
    # The worker moved on: the next commit's failure starts a new run.
    moved = STUCK_LOG.replace("0/2000100, xid 900", "0/20000F0, xid 899", 1)
    again = pglogical_worker(parse(moved, "UTC"), 16384, 2966115277, "nation_from_region")
    assert again is not None and again.repeats == 1 and again.failed_xid == 900
    # Native names the transaction as "in transaction N, finished at LSN".
    native = native_worker(parse(NATIVE_LOG, "UTC"), 16500, "s1")
    assert native is not None and native.failed_xid == 740 and native.repeats == 1


def test_a_worker_failing_again_at_the_same_position_is_stuck_with_the_remedy_of_its_error() -> None:
    s = state()
    sub = next(e for e in edges(s) if e.subscriber == "region").subscription
    up = {"nation": node("nation"), "d1": node("d1")}
    since = datetime(2026, 12, 1, 11, 30, 0, tzinfo=UTC)

    def repeated(error: str, repeats: int) -> Diagnosis:
        log = WorkerLog(
            error=error,
            context="apply INSERT in commit before 0/2000100, xid 900",
            failed_lsn="0/2000100",
            failed_xid=900,
            failures=repeats,
            repeats=repeats,
            repeating_since=since,
        )
        region = node("region", subscriptions={sub: "down"}, workers={sub: down_worker(sub, log)})
        return diagnosis_for({**up, "region": region})

    poisoned = repeated('new row for relation "technology" violates check constraint "no_poison"', 3)
    assert poisoned.cause is Cause.STUCK
    assert (poisoned.stuck_failures, poisoned.stuck_since, poisoned.failed_lsn) == (3, since, "0/2000100")
    assert "failed 3 times in a row since 11:30:00" in poisoned.reason
    assert "xid 900, finishing at 0/2000100" in poisoned.reason
    assert "`reconcile skip region d1`" in poisoned.remedy

    broken = repeated('relation "public.audit" does not exist', 2)
    assert broken.cause is Cause.STUCK
    assert broken.remedy.startswith(
        'remove the cause the error names (relation "public.audit" does not exist)'
    )
    assert "skip" not in broken.remedy

    # Once is not stuck: the conflict it is.
    once = repeated('new row for relation "technology" violates check constraint "no_poison"', 1)
    assert once.cause is Cause.CONFLICT and once.stuck_failures is None


def test_native_errors_counted_while_the_slot_is_behind_are_stuck() -> None:
    s = load_desired_texts({"topology.yaml": STATE + "engine: native\n"}, "test")
    edge = next(e for e in edges(s) if e.subscriber == "region")
    sub = edge.subscription

    def judged(apply_errors: int, lag_bytes: int) -> Diagnosis:
        region = node(
            "region",
            subscriptions={sub: "down"},
            workers={sub: down_worker(sub, apply_errors=apply_errors)},
            log_problem="cannot read the server log: role x may not call pg_current_logfile",
        )
        behind = slot(sub).model_copy(update={"lag_bytes": lag_bytes})
        readings = {"nation": node("nation"), "d1": node("d1"), "region": region}
        return diagnose(s, edge, readings, behind, "down")

    stuck = judged(4, 2048)
    assert stuck.cause is Cause.STUCK and stuck.stuck_failures == 4 and stuck.stuck_since is None
    assert (
        stuck.reason == f"stuck: 4 apply errors counted while slot pgl_{sub} on d1 has 2.0 kB not confirmed"
    )
    assert "server log" in stuck.remedy and "`reconcile skip region d1 --lsn LSN`" in stuck.remedy
    # Nothing left to confirm, or a single error: not stuck.
    assert judged(4, 0).cause is Cause.UNKNOWN
    assert judged(1, 2048).cause is Cause.UNKNOWN


def test_a_lost_slot_wins_over_a_disabled_subscription() -> None:
    s = state()
    sub = next(e for e in edges(s) if e.subscriber == "region").subscription
    region = node("region", subscriptions={sub: "disabled"})
    readings = {"nation": node("nation"), "d1": node("d1"), "region": region}
    lost = diagnosis_for(readings, status="disabled", wal_status="lost")
    assert lost.cause is Cause.SLOT_LOST and lost.remedy.startswith("re-copy needed")
    # With its slot kept, enabling it is the remedy.
    assert diagnosis_for(readings, status="disabled").cause is Cause.DISABLED


def test_a_provider_that_shut_down_is_a_lost_connection() -> None:
    """pglogical logs "data stream ended" when the provider's walsender goes away (a provider restart)."""
    s = state()
    sub = next(e for e in edges(s) if e.subscriber == "region").subscription
    ended = WorkerLog(error="data stream ended", failures=1)
    region = node("region", subscriptions={sub: "down"}, workers={sub: down_worker(sub, ended)})
    found = diagnosis_for({"nation": node("nation"), "d1": node("d1"), "region": region})
    assert found.cause is Cause.CONNECTION_LOST and found.remedy.startswith("restart")
