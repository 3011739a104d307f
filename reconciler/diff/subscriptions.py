"""Pure diff of one node's subscriptions, and of the pglogical ones a native network still holds."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.actions import (
    Action,
    AlterSubscription,
    CreateSubscription,
    DropSubscription,
    ReplaceSubscription,
    SwitchSubscription,
)
from reconciler.model import Subscription


def diff_legacy(
    node: str, desired: Mapping[str, Subscription], legacy: Mapping[str, Subscription]
) -> list[Action]:
    """Native engine: pglogical subscriptions still held; each declared edge is handed over.

    The desired native subscription of the same name is created by the switch
    itself (never by a CreateSubscription, whose initial copy would double
    rows the pglogical one already brought); an undeclared one is dropped.
    """
    actions: list[Action] = []
    for name, old in sorted(legacy.items()):
        want = desired.get(name)
        if want is None:
            actions.append(DropSubscription(node=node, name=name, provider_node=old.provider_node))
        else:
            actions.append(SwitchSubscription(node=node, before=old, after=want))
    return actions


def diff_subscriptions(
    node: str, desired: Mapping[str, Subscription], live: Mapping[str, Subscription]
) -> list[Action]:
    actions: list[Action] = []
    for name in sorted(set(live) - set(desired)):
        have = live[name]
        actions.append(DropSubscription(node=node, name=name, provider_node=have.provider_node))
    for name, want in sorted(desired.items()):
        found = live.get(name)
        if found is None:
            actions.append(CreateSubscription(node=node, subscription=want))
            continue
        have = found
        if want.provider_node != have.provider_node or sorted(want.forward_origins) != sorted(
            have.forward_origins
        ):
            # pglogical has no function to change either: drop and re-create.
            actions.append(ReplaceSubscription(node=node, before=have, after=want))
        elif (
            sorted(want.replication_sets) != sorted(have.replication_sets)
            or want.provider_dsn != have.provider_dsn
            or want.enabled != have.enabled
        ):
            actions.append(AlterSubscription(node=node, before=have, after=want))
    return actions
