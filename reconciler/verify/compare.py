"""Pure: find missing, differing and stale rows by descending only into key ranges whose hashes differ.

The approach of data-diff tools: summarise ranges on every side, keep the
ranges whose summaries disagree, split them, and fetch key + row hash only
for ranges small enough; then fetch nothing else. The sides are objects that
answer two questions (``Side``); the live ones run SQL (``node.py``), the
tests use rows in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from reconciler import db
from reconciler.verify.ranges import EMPTY, HEX_DIGITS, Probe, Summary, child_digits, combine

# A range at most this big (rows on the fuller side) is fetched as keys + hashes.
LEAF_ROWS = 128
# Target rows per bucket when a range is split.
BUCKET_ROWS = 256
# Hex digits of the first round's buckets.
FIRST_DIGITS = 2
# Prefixes per leaf request, so one statement's parameters stay small.
LEAF_BATCH = 512


class Side(Protocol):
    """One node's view of one table: the subscriber's rows, or a provider's passing rows."""

    def summaries(self, probes: Sequence[Probe]) -> dict[str, Summary]:
        """Bucket prefix -> summary, for the buckets that hold rows."""
        ...

    def rows(self, prefixes: Sequence[str]) -> dict[str, str]:
        """Key -> row hash of every row in the given ranges."""
        ...


@dataclass(frozen=True)
class Outcome:
    """What one subscriber/table comparison found. Keys sorted; per provider for missing/differing."""

    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    differing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    stale: tuple[str, ...] = ()
    rounds: int = 0
    # Rows held here that no provider passes but that a node outside them holds
    # (a node that moved to another parent, whose rows now reach the tiers
    # above by that path): node -> keys. Not in `stale`: deleting them here
    # as an ordinary delete would replicate up and take them from the nation.
    moved: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def consistent(self) -> bool:
        return (
            not self.stale
            and not any(self.missing.values())
            and not any(self.differing.values())
            and not any(self.moved.values())
        )

    def with_moved(self, moved: Mapping[str, Sequence[str]]) -> Outcome:
        """This outcome with the given stale keys taken out of `stale` as moved (node -> keys)."""
        found = {node: tuple(sorted(keys)) for node, keys in sorted(moved.items()) if keys}
        taken = {k for keys in found.values() for k in keys}
        return Outcome(
            missing=self.missing,
            differing=self.differing,
            stale=tuple(k for k in self.stale if k not in taken),
            rounds=self.rounds,
            moved=found,
        )

    def count(self) -> tuple[int, int, int]:
        """(missing, differing, stale)."""
        return (
            sum(len(k) for k in self.missing.values()),
            sum(len(k) for k in self.differing.values()),
            len(self.stale),
        )


def _summaries(sides: Mapping[str, Side], probes: Sequence[Probe]) -> dict[str, dict[str, Summary]]:
    # Every side answers the same question at once: the nodes work in parallel.
    names = list(sides)
    found = db.fan_out(names, lambda name: sides[name].summaries(probes), len(names), name="verify")
    return dict(zip(names, found, strict=True))


def _rows(sides: Mapping[str, Side], prefixes: Sequence[str]) -> dict[str, dict[str, str]]:
    names = list(sides)
    found = db.fan_out(names, lambda name: sides[name].rows(prefixes), len(names), name="verify")
    return dict(zip(names, found, strict=True))


def compare(
    subscriber: Side,
    providers: Mapping[str, Side],
    *,
    leaf_rows: int = LEAF_ROWS,
    bucket_rows: int = BUCKET_ROWS,
) -> Outcome:
    """Compare the subscriber's rows with the union of the providers' passing rows."""
    sides: dict[str, Side] = {"": subscriber, **{f"p:{name}": side for name, side in providers.items()}}
    leaves: list[str] = []
    # The first round already splits the key space (256 buckets): a consistent
    # table costs at most 256 short rows per node, and a differing one needs
    # only one full scan per node; later rounds scan differing ranges only.
    pending = [Probe("", FIRST_DIGITS)]
    rounds = 0
    while pending:
        rounds += 1
        answers = _summaries(sides, pending)
        mine = answers.pop("")
        buckets = sorted(set(mine).union(*answers.values()))
        pending = []
        for bucket in buckets:
            held = mine.get(bucket, EMPTY)
            expected = combine(a.get(bucket, EMPTY) for a in answers.values())
            if held == expected:
                continue
            size = max(held.count, expected.count)
            if size <= leaf_rows or len(bucket) >= HEX_DIGITS:
                leaves.append(bucket)
            else:
                depth = min(HEX_DIGITS, len(bucket) + child_digits(size, bucket_rows))
                pending.append(Probe(bucket, depth))
    if not leaves:
        none = {p: () for p in providers}
        return Outcome(missing=dict(none), differing=dict(none), rounds=rounds)
    rounds += 1
    held_rows: dict[str, str] = {}
    passing: dict[str, dict[str, str]] = {p: {} for p in providers}
    for start in range(0, len(leaves), LEAF_BATCH):
        batch = leaves[start : start + LEAF_BATCH]
        answers_rows = _rows(sides, batch)
        held_rows.update(answers_rows.pop(""))
        for name in providers:
            passing[name].update(answers_rows[f"p:{name}"])
    return diff_rows(held_rows, passing, rounds)


def diff_rows(held: Mapping[str, str], passing: Mapping[str, Mapping[str, str]], rounds: int = 0) -> Outcome:
    """Pure: key -> hash at the subscriber versus key -> hash of each provider's passing rows."""
    missing = {p: tuple(sorted(k for k in rows if k not in held)) for p, rows in sorted(passing.items())}
    differing = {
        p: tuple(sorted(k for k, h in rows.items() if k in held and held[k] != h))
        for p, rows in sorted(passing.items())
    }
    anywhere = set().union(*(set(rows) for rows in passing.values())) if passing else set()
    stale = tuple(sorted(k for k in held if k not in anywhere))
    return Outcome(missing=missing, differing=differing, stale=stale, rounds=rounds)
