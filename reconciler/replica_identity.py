"""A table's replica identity as a value: default, full, nothing, or a unique index on named columns."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class IdentityKind(StrEnum):
    DEFAULT = "default"  # the primary key
    FULL = "full"
    NOTHING = "nothing"
    INDEX = "index"  # a unique index, named by its columns in index order
    MISSING = "missing"  # the table does not exist (live only)
    UNKNOWN = "unknown"  # not read (live only)


@dataclass(frozen=True)
class ReplicaIdentity:
    """Written as the plan and the catalogs' JSON have it: `default`, `full`, ..., or `index(a,b)`."""

    kind: IdentityKind
    columns: tuple[str, ...] = ()

    @classmethod
    def index(cls, columns: tuple[str, ...] | list[str]) -> ReplicaIdentity:
        return cls(IdentityKind.INDEX, tuple(columns))

    @classmethod
    def parse(cls, text: str) -> ReplicaIdentity:
        """The value of its written form; ValueError for anything else."""
        if text.startswith("index(") and text.endswith(")"):
            return cls.index([c for c in text[len("index(") : -1].split(",") if c])
        try:
            kind = IdentityKind(text)
        except ValueError:
            raise ValueError(f"unknown replica identity {text!r}") from None
        if kind is IdentityKind.INDEX:
            raise ValueError("an index replica identity names its columns: index(a,b)")
        return cls(kind)

    def __str__(self) -> str:
        if self.kind is IdentityKind.INDEX:
            return f"index({','.join(self.columns)})"
        return self.kind.value
