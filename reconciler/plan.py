"""The plan: one global order of actions (one phase table), fingerprints, and the plan file."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path

import pydantic

from reconciler import dsn as dsnlib
from reconciler.actions import (
    Action,
    AlterSubscription,
    ChangeKind,
    ChangeNodeDsn,
    CreateNode,
    CreateSubscription,
    DropNode,
    ReplaceSubscription,
    SwitchSubscription,
)
from reconciler.errors import PlanError
from reconciler.files import atomic_write
from reconciler.model import DesiredState, Frozen
from reconciler.preflight import Blocker
from reconciler.secrets import redact

FORMAT_VERSION = 1

# The global order of action kinds: the ONLY place it is written. Actions are
# sorted by phase first, then node name, then subject, so every dependency
# across nodes is met by phase alone. Why each sits where it does:
#
# * drop_subscription, drop_slot, drop_node come FIRST, not last. A drop_node
#   happens only when a database holds a pglogical node under another name:
#   pglogical allows one local node per database (create_node fails while the
#   old one exists) and drop_node refuses while the node still has
#   subscriptions, and fails on an active slot (reference/pglogical-2.4.md
#   1.1). So subscriptions and orphaned slots go before nodes, and nodes go
#   before creation. Dropping an undeclared subscription early loses nothing:
#   subscription names are deterministic per (subscriber, provider), so a
#   dropped one is never the one a creation below relies on.
# * create_node .. replace_table: a provider's node, sets and tables exist
#   before any subscription asks for them; subscribing to a set the provider
#   lacks leaves the subscription `down` (REPLICATION-NOTES "Other traps").
# * alter_subscription (which also removes sets from subscriptions) comes
#   before drop_set: dropping a set a subscription still uses leaves it `down`.
# * remove_table, drop_set last: removals in reverse dependency order.
PHASES: tuple[str, ...] = (
    # A server setting first: it protects providers' disks before anything new replicates.
    "set_wal_keep_size",
    "drop_subscription",
    "drop_slot",
    "drop_node",
    "create_node",
    "change_node_dsn",
    # Schema migrations: after the node exists (a drop_node of a renamed one
    # went first), before any set, table or subscription that needs what a
    # migration creates (a new table added to a set, a column in a list).
    # Across nodes apply/graph.py orders them tier by tier (RunMigration.after).
    "run_migration",
    # The tool's heartbeat table (monitoring: heartbeat): on every node before
    # a set holds it or a subscription's initial copy reaches it.
    "create_heartbeat",
    "create_set",
    "alter_set",
    # Native: before a filtered table is published, or PostgreSQL refuses the
    # application's UPDATEs on it (filter column outside the replica identity).
    "set_replica_identity",
    "add_table",
    "replace_table",
    "create_subscription",
    # Native engine switch: publications exist by now; the pglogical
    # subscription of the edge is dropped only once the native one took over.
    "switch_subscription",
    "alter_subscription",
    # Native: subscribers pick up tables their provider's publication gained.
    "refresh_subscription",
    "replace_subscription",
    # A link that is down comes back once everything it needs is in place.
    "restart_subscription",
    "remove_table",
    "drop_set",
)
_PHASE_INDEX = {kind: i for i, kind in enumerate(PHASES)}


def phase_index(kind: str) -> int:
    """Where an action kind sits in PHASES (lower runs first)."""
    return _PHASE_INDEX[kind]


def order(actions: Iterable[Action]) -> list[Action]:
    """Actions in execution order: phase, rank (a migration's rollout step), node, subject; the full
    JSON breaks any remaining tie."""
    return sorted(
        actions,
        key=lambda a: (_PHASE_INDEX[a.kind], a.rank, a.node, a.subject, a.model_dump_json()),
    )


@cache
def tool_version() -> str:
    try:
        return metadata.version("reconcile")
    except metadata.PackageNotFoundError:
        return "unknown"


class Summary(Frozen):
    """Terraform-style counts by change kind: a replace (-/+) is one add AND one destroy.

    Every action counted in `to_destroy` is destructive (ChangeKind says why),
    so all of them wait for --allow-destroy; so does a lowered
    max_slot_wal_keep_size, which counts as a change.
    """

    to_add: int
    to_change: int
    to_destroy: int


class Plan(Frozen):
    """Everything `plan` found: ordered actions, blockers, silent nodes, live fingerprints."""

    format_version: int = FORMAT_VERSION
    tool_version: str
    desired_commit: str | None = None
    actions: tuple[Action, ...] = ()
    blockers: tuple[Blocker, ...] = ()
    unreachable: dict[str, str] = pydantic.Field(default_factory=dict)
    fingerprints: dict[str, str] = pydantic.Field(default_factory=dict)
    nodes: tuple[str, ...] = ()
    # Every node the desired state declares (planned or not): a subscription
    # dropped to a provider outside them retires that node (moves.retirements).
    declared: tuple[str, ...] = ()
    # Nodes whose newest apply record is not ok (failed, interrupted, running):
    # the next apply that completes there supersedes it.
    unsettled: dict[str, str] = pydantic.Field(default_factory=dict)
    # Subscribers that still owe rows of these declared tables (reconcile.pending_rows: an
    # earlier apply's repair did not finish): apply verifies and repairs them, and the plan
    # is not converged until it did.
    pending_rows: dict[str, tuple[str, ...]] = pydantic.Field(default_factory=dict)
    # Schema migrations: nodes whose pending migrations wait (on a tier not read,
    # or itself waiting), and migrations a node ran that the desired state does
    # not know (drift: a newer branch applied, or a file removed).
    migrations_waiting: dict[str, str] = pydantic.Field(default_factory=dict)
    migrations_unknown: dict[str, tuple[str, ...]] = pydantic.Field(default_factory=dict)

    @property
    def summary(self) -> Summary:
        kinds = [a.change for a in self.actions]
        replaced = kinds.count(ChangeKind.REPLACE)
        return Summary(
            to_add=kinds.count(ChangeKind.CREATE) + replaced,
            to_change=kinds.count(ChangeKind.CHANGE),
            to_destroy=kinds.count(ChangeKind.DESTROY) + replaced,
        )

    @property
    def to_add(self) -> int:
        return self.summary.to_add

    @property
    def to_change(self) -> int:
        return self.summary.to_change

    @property
    def to_destroy(self) -> int:
        return self.summary.to_destroy

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    @property
    def destroys(self) -> tuple[Action, ...]:
        """Actions flagged destructive: they run only with --allow-destroy."""
        return tuple(a for a in self.actions if a.destructive)

    def held_back(self, allow_destroy: bool) -> tuple[Action, ...]:
        """Actions apply must skip: every destructive one unless destroys are allowed, and
        everything on a node whose node drop is held back (a database holds one pglogical
        node: the new one cannot be created while the old one stays)."""
        if allow_destroy:
            return ()
        renamed = {a.node for a in self.destroys if isinstance(a, DropNode)}
        return tuple(a for a in self.actions if a.destructive or a.node in renamed)

    def runnable(self, allow_destroy: bool) -> tuple[Action, ...]:
        """Actions apply may run, in plan order."""
        held = {id(a) for a in self.held_back(allow_destroy)}
        return tuple(a for a in self.actions if id(a) not in held)

    def by_node(self) -> dict[str, list[Action]]:
        """Actions grouped per node, nodes sorted, plan order kept within each node."""
        groups: dict[str, list[Action]] = {}
        for action in self.actions:
            groups.setdefault(action.node, []).append(action)
        return dict(sorted(groups.items()))

    def sorted_blockers(self) -> list[Blocker]:
        return sorted(self.blockers, key=lambda b: (b.node, b.table or "", b.message))


def redact_action(action: Action) -> Action:
    """The action with every DSN it carries stripped of its password."""
    if isinstance(action, CreateNode):
        return action.model_copy(update={"dsn": redact(action.dsn)})
    if isinstance(action, ChangeNodeDsn):
        return action.model_copy(
            update={"before": redact(action.before), "after": redact(action.after)}
        )
    if isinstance(action, CreateSubscription):
        sub = action.subscription
        return action.model_copy(
            update={"subscription": sub.model_copy(update={"provider_dsn": redact(sub.provider_dsn)})}
        )
    if isinstance(action, AlterSubscription | ReplaceSubscription | SwitchSubscription):
        b, a = action.before, action.after
        return action.model_copy(
            update={
                "before": b.model_copy(update={"provider_dsn": redact(b.provider_dsn)}),
                "after": a.model_copy(update={"provider_dsn": redact(a.provider_dsn)}),
            }
        )
    return action


def redacted(plan: Plan) -> Plan:
    """The plan with no password anywhere (the desired state has none; live DSNs might)."""
    return plan.model_copy(update={"actions": tuple(redact_action(a) for a in plan.actions)})


def foreign_dsns(plan: Plan, state: DesiredState) -> list[str]:
    """Actions of a saved plan that would install a DSN other than the one `state` declares.

    A plan file is data: whoever can write it can edit it. apply connects
    only with the DSNs of the desired state it loads, but a pglogical node's
    interface and a subscription's provider DSN (what an action installs)
    are what the servers themselves then connect to, with their own
    secrets. Each must read, as libpq parses it, exactly as the declared
    `dsn` of its node: the keywords and values libpq reads are compared, not
    texts with passwords cut out, since whatever such a cut removes is never
    compared yet still read by libpq ("postgresql://:@evil,@host/db" and
    "postgresql://host/db" differ only in a userinfo the cut removes whole).
    """
    declared = {name: _libpq_reads(node.dsn) for name, node in state.nodes.items()}
    found: list[str] = []
    for action in plan.actions:
        installs: tuple[str, str] | None = None
        if isinstance(action, CreateNode):
            installs = (action.name, action.dsn)
        elif isinstance(action, ChangeNodeDsn):
            installs = (action.name, action.after)
        elif isinstance(action, CreateSubscription):
            installs = (action.subscription.provider_node, action.subscription.provider_dsn)
        elif isinstance(action, AlterSubscription | ReplaceSubscription | SwitchSubscription):
            installs = (action.after.provider_node, action.after.provider_dsn)
        if installs is None:
            continue
        wanted = declared.get(installs[0])
        if wanted is None or _libpq_reads(installs[1]) != wanted:
            found.append(f"{action.node}: {action.describe()}")
    return found


def _libpq_reads(dsn: str) -> dict[str, str] | None:
    """The keywords libpq reads from `dsn`, or None when it cannot parse it."""
    try:
        return dsnlib.parse(dsn)
    except dsnlib.DsnError:
        return None


def save_plan(plan: Plan, path: Path | str) -> None:
    """Write the plan as JSON, atomically (the old file or the new, never half of one)."""
    target = Path(path)
    try:
        atomic_write(target, redacted(plan).model_dump_json(indent=2) + "\n")
    except OSError as exc:
        raise PlanError(f"cannot write plan file {target}: {exc.strerror}") from exc


def load_plan(path: Path | str) -> Plan:
    """Read a plan file written by save_plan; any problem is a PlanError naming the file."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read plan file {source}: {exc}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"plan file {source} is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise PlanError(f"plan file {source} is not a plan (expected a JSON object)")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanError(
            f"plan file {source} has format_version {version!r}; "
            f"this reconcile ({tool_version()}) reads {FORMAT_VERSION}"
        )
    try:
        return Plan.model_validate(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlanError(
            f"plan file {source} is not a valid plan: {where}: {first['msg']}"
            f" ({exc.error_count()} problem(s))"
        ) from exc
