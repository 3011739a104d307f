"""The capacity check: can each server's worker, slot and walsender settings carry the nodes declared on it.

Pure: the desired state's tree and the settings inspection read. A node is a
database; nodes of one level may share a server, whose settings then carry
them all, so the need is summed per server (system_identifier).

pglogical, per server (REPLICATION-NOTES: each subscription's apply worker and
each database's manager are background workers of their own):
  max_worker_processes  >= 2 + sum over its nodes of (1 + 2 x subscriptions)
      2: pglogical's supervisor and PostgreSQL's logical replication launcher;
      1 manager per database; per subscription its apply worker and the sync
      worker a copy (initial or of an added table) starts beside it.
Both engines, per server:
  max_replication_slots >= providers, and >= subscriptions
      one slot per provider node (its one subscriber's); PostgreSQL 15 sizes
      the replication origins, one per subscription, by the same setting.
  max_wal_senders       >= providers
      one walsender per subscriber streaming from a provider node.
The native engine's workers come from max_logical_replication_workers and
are not checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.model import DesiredState, Engine, Frozen
from reconciler.topology import edges

# The README and the messages state the formulas; keep them in step with the code below.
WORKERS_FORMULA = "2 (supervisor, launcher) + per database 1 manager + per subscription 2 (apply, copy)"


class Capacity(Frozen):
    """The three settings of one server that bound how many nodes and links it carries."""

    max_worker_processes: int
    max_replication_slots: int
    max_wal_senders: int


def shortfalls(state: DesiredState, nodes: Sequence[str], capacity: Capacity) -> list[str]:
    """What the server holding `nodes` (declared node names) lacks, one message per setting."""
    on_server = set(nodes)
    subscriptions = sum(1 for e in edges(state) if e.subscriber in on_server)
    providers = sum(1 for n in on_server if state.nodes[n].upstream is not None)
    databases = len(on_server)
    who = ", ".join(sorted(on_server))
    where = f"this server's node(s) ({who})"
    found: list[str] = []
    if state.engine is Engine.PGLOGICAL:
        workers = 2 + databases + 2 * subscriptions
        if capacity.max_worker_processes < workers:
            found.append(
                f"max_worker_processes is {capacity.max_worker_processes}, too few for {where}: "
                f"{WORKERS_FORMULA} = 2 + {databases} + 2 x {subscriptions} = {workers}; "
                f"raise it to at least {workers} (restart needed)"
            )
    slots = max(providers, subscriptions)
    if capacity.max_replication_slots < slots:
        found.append(
            f"max_replication_slots is {capacity.max_replication_slots}, too few for {where}: "
            f"1 slot per provider node ({providers}) and 1 replication origin per subscription "
            f"({subscriptions}) need {slots}; raise it to at least {slots} (restart needed)"
        )
    if capacity.max_wal_senders < providers:
        found.append(
            f"max_wal_senders is {capacity.max_wal_senders}, too few for {where}: "
            f"1 walsender per provider node's subscriber = {providers}; "
            f"raise it to at least {providers} (restart needed)"
        )
    return found
