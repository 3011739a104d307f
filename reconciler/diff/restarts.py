"""Pure: subscriptions that are down while both ends answer and nothing stands in their way are restarted.

pglogical starts a failed apply worker again only when its manager wakes,
every 180 s (REPLICATION-NOTES "Living networks"): after a provider restart,
or once the column a worker failed on has been added, the link would stay
down for minutes. A restart is planned only when it can help:

- the subscription is declared, enabled, finished its initial sync (a copy
  interrupted by a restart can leave it broken for good) and no other action
  of the plan touches it;
- its worker has been down for at least `restart_after_seconds` (pglogical's
  own first retry comes after 5 s; a worker that is just restarting is left alone);
- its provider was read and holds its slot, not lost (else it is replaced);
- the cause is gone: the provider sends no column the subscriber lacks, and
  its last error is not one the same change raises again (a constraint).
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.actions import Action, RestartSubscription
from reconciler.diff.desired import Desired
from reconciler.inspect.server_log import persists
from reconciler.live import LiveNode, SlotStatus
from reconciler.model import Subscription


def sent_columns_missing(
    desired: Desired, sub: Subscription, provider: LiveNode, subscriber: LiveNode
) -> bool:
    """Whether the provider has a column of a table in the subscription's sets that the subscriber lacks."""
    declared = desired.nodes[sub.provider_node].catalog.sets if sub.provider_node in desired.nodes else {}
    for set_name in sub.replication_sets:
        rset = declared.get(set_name)
        if rset is None:
            continue
        for table, spec in rset.tables.items():
            here = subscriber.columns.get(table)
            if here is None:
                continue
            listed = set(spec.columns) if spec.columns is not None else None
            if any(
                (listed is None or c in listed) and c not in here for c in provider.columns.get(table, ())
            ):
                return True
    return False


def restarts(desired: Desired, live: Mapping[str, LiveNode], actions: list[Action]) -> list[Action]:
    """A RestartSubscription for each subscription down long enough whose cause is gone."""
    touched = {(a.node, a.subject) for a in actions}
    found: list[Action] = []
    for subscriber, node in sorted(live.items()):
        wanted = desired.nodes[subscriber].catalog.subscriptions if subscriber in desired.nodes else {}
        for name, sub in sorted(node.catalog.subscriptions.items()):
            facts = node.subscriptions.get(name)
            if (
                name not in wanted
                or not sub.enabled
                or facts is None
                or not facts.synced
                or facts.worker_running
                or facts.down_seconds is None
                or facts.down_seconds < desired.restart_after_seconds
                or (subscriber, f"subscription {name}") in touched
            ):
                continue
            provider = live.get(sub.provider_node)
            if provider is None or provider.slots.get(facts.slot) in (None, SlotStatus.LOST):
                continue
            if sent_columns_missing(desired, sub, provider, node):
                continue
            if facts.last_error is not None and persists(facts.last_error):
                continue
            reason = f"down {facts.down_seconds:.0f} s"
            if facts.last_error is not None:
                reason += f", last error: {facts.last_error}"
            found.append(
                RestartSubscription(
                    node=subscriber, name=name, provider_node=sub.provider_node, reason=reason
                )
            )
    return found
