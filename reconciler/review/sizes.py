"""Table sizes on provider nodes, to put a number on the initial copy a change starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from reconciler import db
from reconciler.errors import ConnectError
from reconciler.model import DesiredState, Frozen


class TableSize(Frozen):
    """One table on one node; None fields: unknown (missing table, never analysed)."""

    rows: int | None
    bytes: int | None


def _read(dsn: str, tables: Sequence[str], timeout: float) -> dict[str, TableSize]:
    with db.connect(
        dsn, timeout=timeout, fallback_application_name="reconcile review", statement_timeout=timeout
    ) as conn:
        query = db.sql_file("reconciler.review", "table_sizes")
        rows: list[tuple[Any, ...]] = conn.execute(query, {"tables": list(tables)}).fetchall()
    result: dict[str, TableSize] = {}
    for name, estimate, size in rows:
        result[str(name)] = TableSize(
            rows=int(estimate) if estimate is not None and estimate >= 0 else None,
            bytes=int(size) if size is not None else None,
        )
    return result


def table_sizes(
    state: DesiredState, wanted: Mapping[str, Sequence[str]], timeout: float
) -> dict[str, dict[str, TableSize]]:
    """{node: {table: size}} for the tables wanted on each node, all nodes at once.

    A node that does not answer is left out: the review then says the estimate
    is unknown rather than waiting or failing.
    """
    names = sorted(n for n in wanted if n in state.nodes and wanted[n])
    if not names:
        return {}

    def read(name: str) -> dict[str, TableSize] | None:
        try:
            return _read(state.nodes[name].connect_dsn, sorted(set(wanted[name])), timeout)
        except (ConnectError, psycopg.OperationalError, psycopg.errors.InsufficientPrivilege):
            return None

    found = db.fan_out(names, read, 32, name="sizes")
    return {name: sizes for name, sizes in zip(names, found, strict=True) if sizes is not None}
