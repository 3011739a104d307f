"""Table sizes on provider nodes, to put a number on the initial copy a change starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from reconciler import db
from reconciler.errors import ConnectError
from reconciler.model import DesiredState, Frozen

_QUERY = sql.SQL(resources.files("reconciler.review").joinpath("table_sizes.sql").read_text(encoding="utf-8"))


class TableSize(Frozen):
    """One table on one node; None fields: unknown (missing table, never analysed)."""

    rows: int | None
    bytes: int | None


def _read(dsn: str, tables: Sequence[str], timeout: float) -> dict[str, TableSize]:
    millis = max(1, int(timeout * 1000))
    with db.connect(dsn, timeout=timeout, fallback_application_name="reconcile review") as conn:
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(millis)))
        rows: list[tuple[Any, ...]] = conn.execute(_QUERY, {"tables": list(tables)}).fetchall()
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
    found: dict[str, dict[str, TableSize]] = {}
    with ThreadPoolExecutor(max_workers=min(32, len(names)), thread_name_prefix="sizes") as pool:
        futures = {
            n: pool.submit(_read, state.nodes[n].connect_dsn, sorted(set(wanted[n])), timeout) for n in names
        }
        for name in names:
            try:
                found[name] = futures[name].result()
            except (ConnectError, psycopg.OperationalError, psycopg.errors.InsufficientPrivilege):
                continue
    return found
