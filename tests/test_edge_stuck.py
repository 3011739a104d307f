"""A worker that restarts at the same transaction on a real server: status names it `stuck`, and skip cures it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import cli, wait_for
from tests.test_skip import insert, make_pair, region_edge, title_at

pytestmark = pytest.mark.server


def test_a_worker_failing_twice_on_the_same_commit_is_stuck_and_skip_moves_past_it(network: Any) -> None:
    net = make_pair(network, "pglogical")
    first = insert(net, "d1", "first")
    wait_for(lambda: title_at(net, "region", first) == "first", "the link replicating")

    # A CHECK only the subscriber has: the commit fails, and fails again at
    # the same commit on every start of the worker (its origin never moves).
    net.execute("region", "ALTER TABLE public.technology ADD CONSTRAINT no_poison CHECK (title <> 'poison')")
    poison = insert(net, "d1", "poison")
    wait_for(lambda: region_edge(net)["cause"] == "conflict", "the first failure", 30)
    assert region_edge(net)["stuck_failures"] is None
    # pglogical's manager starts it again after 5 s or 180 s (REPLICATION-NOTES,
    # not reliably the first): a disable and enable is the same restart, now.
    name = region_edge(net)["subscription"]
    net.execute("region", "SELECT pglogical.alter_subscription_disable(%s, true)", (name,))
    net.execute("region", "SELECT pglogical.alter_subscription_enable(%s, true)", (name,))
    seen: dict[str, Any] = {}

    def stuck() -> bool:
        seen.update(region_edge(net))
        return seen["cause"] == "stuck"

    wait_for(stuck, "status naming the edge stuck after the second failure", 30)
    assert seen["stuck_failures"] >= 2 and seen["stuck_since"] is not None, seen
    assert seen["failed_lsn"] is not None and seen["failed_lsn"] in seen["reason"], seen
    assert "times in a row since" in seen["reason"] and "xid " in seen["reason"], seen
    assert 'violates check constraint "no_poison"' in seen["reason"], seen
    assert "`reconcile skip region d1`" in seen["remedy"], seen

    # skip accepts a stuck edge: the link resumes past the poisoned commit.
    net.execute("d1", "UPDATE public.technology SET title = 'cured' WHERE id = %s", (poison,))
    skipped = cli(
        "skip", "region", "d1", "-d", str(net.dir), "--auto-approve", "--timeout", "5", "--wait", "30"
    )
    assert skipped.exit_code == 0, skipped.output
    later = insert(net, "d1", "later")
    wait_for(lambda: title_at(net, "region", later) == "later", "a change made after the skip", 30)
    assert title_at(net, "region", poison) == "cured"
    assert region_edge(net)["cause"] is None
