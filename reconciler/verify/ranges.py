"""Pure: key ranges over UUIDs named by hex prefixes, and their (count, xor-hash) summaries.

A range is every UUID whose 32 hex digits start with a prefix ("" is the whole
key space). PostgreSQL orders uuid by its bytes, which is the order of its hex
text, so a prefix is the closed interval [prefix000..., prefixfff...] and a
btree index on the key serves it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

HEX_DIGITS = 32


def uuid_text(hex32: str) -> str:
    """32 hex digits in the canonical 8-4-4-4-12 form."""
    h = hex32
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def key_hex(key: str) -> str:
    """A UUID's 32 hex digits, lower case, without dashes."""
    return key.replace("-", "").lower()


def text_width(depth: int) -> int:
    """Characters of a UUID's text that hold its first `depth` hex digits (dashes included)."""
    return depth + sum(1 for dash in (8, 12, 16, 20) if dash < depth)


def bounds(prefix: str) -> tuple[str, str]:
    """The first and last UUID of a prefix's range (both inclusive)."""
    return uuid_text(prefix.ljust(HEX_DIGITS, "0")), uuid_text(prefix.ljust(HEX_DIGITS, "f"))


def child_digits(rows: int, bucket_rows: int, max_step: int = 3) -> int:
    """Hex digits to add so a range of `rows` splits into buckets of about `bucket_rows`.

    At least 1 (the range must shrink), at most `max_step` (4096 buckets) so
    one answer stays small whatever the estimate.
    """
    digits = 1
    while digits < max_step and rows > bucket_rows * 16**digits:
        digits += 1
    return digits


@dataclass(frozen=True)
class Summary:
    """Rows of one range on one side: how many, and the XOR of their 64-bit row hashes.

    Keys are UUIDs, so the rows of different providers are disjoint: the XOR
    of the providers' summaries equals the subscriber's exactly when the
    subscriber holds the same rows (up to a 2**-64 chance of a collision).
    """

    count: int = 0
    xor: int = 0

    def __add__(self, other: Summary) -> Summary:
        return Summary(self.count + other.count, self.xor ^ other.xor)


EMPTY = Summary()


def combine(summaries: Iterable[Summary]) -> Summary:
    total = EMPTY
    for s in summaries:
        total = total + s
    return total


@dataclass(frozen=True, order=True)
class Probe:
    """Ask for the summaries of `prefix`'s range, bucketed by the first `depth` hex digits."""

    prefix: str
    depth: int
