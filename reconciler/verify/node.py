"""Live sides: one connection per node, the verify statements on it, and the bytes it returned."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from reconciler import db
from reconciler.errors import ConnectError
from reconciler.row_filter import filter_sql
from reconciler.verify.ranges import Probe, Summary, bounds, key_hex, text_width

# DataRow framing per the v3 protocol: type byte + int32 length + int16 field
# count per row, then an int32 length before each field's value.
ROW_OVERHEAD = 7
FIELD_OVERHEAD = 4


def statement(name: str) -> sql.SQL:
    """One of verify's .sql files (reconciler/verify/sql/<name>.sql)."""
    return db.sql_file("reconciler.verify", f"sql/{name}")


class NodeUnreachable(Exception):
    """The node did not answer; `reason` is libpq's message without secrets."""

    def __init__(self, node: str, reason: str) -> None:
        super().__init__(f"{node}: {reason}")
        self.node = node
        self.reason = reason


class NodeSession:
    """One autocommit connection to one node; counts the bytes of every row it reads."""

    def __init__(
        self,
        node: str,
        dsn: str,
        *,
        timeout: float,
        statement_timeout: float,
        writable: bool = False,
    ) -> None:
        self.node = node
        self.dsn = dsn
        self.bytes_read = 0
        self._lock = threading.Lock()
        try:
            # Row text must be byte-identical on every node for equal values:
            # db.connect pins every setting that changes how a type prints.
            # Plain verify never writes: the server enforces it (read_only).
            self.conn: psycopg.Connection[Any] = db.connect(
                dsn,
                timeout=timeout,
                fallback_application_name="reconcile verify",
                writes=writable,
                statement_timeout=statement_timeout,
                read_only=not writable,
            )
        except ConnectError as exc:
            raise NodeUnreachable(node, str(exc)) from None

    def execute(
        self, query: sql.SQL | sql.Composed, params: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (counted in `bytes_read`), or [] when it returns none."""
        with self._lock, self.conn.cursor() as cur:
            cur.execute(query, params)
            if cur.description is None:
                return []
            result = cur.pgresult
            if result is not None:
                size = 0
                for row in range(result.ntuples):
                    size += ROW_OVERHEAD
                    for col in range(result.nfields):
                        value = result.get_value(row, col)
                        size += FIELD_OVERHEAD + (len(value) if value is not None else 0)
                self.bytes_read += size
            return cur.fetchall()

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    is_key: bool


def read_columns(session: NodeSession, table: str) -> list[Column]:
    """The table's columns on this node; [] when the table does not exist."""
    rows = session.execute(statement("columns"), {"table": table})
    return [Column(str(name), str(type_), bool(is_key)) for name, type_, is_key in rows]


# PostgreSQL passes at most 100 arguments to a function: wide rows are built in
# pieces, joined with || (jsonb arrays and objects both concatenate).
ARGUMENTS = 90


def values_array(columns: Sequence[str]) -> sql.Composed:
    """`jsonb_build_array(t.a, t.b, ...)`: a row's values in the order of `columns`."""
    pieces = [
        sql.SQL("pg_catalog.jsonb_build_array({})").format(
            sql.SQL(", ").join(sql.Identifier("t", c) for c in columns[i : i + ARGUMENTS])
        )
        for i in range(0, len(columns), ARGUMENTS)
    ]
    return sql.SQL(" || ").join(pieces)


def values_record(columns: Sequence[str], array: sql.Composable) -> sql.Composed:
    """`jsonb_build_object('a', v->0, 'b', v->1, ...)`: the object values_array's array stands for."""
    pairs = [
        sql.SQL("{}, {} -> {}").format(sql.Literal(c), array, sql.Literal(i)) for i, c in enumerate(columns)
    ]
    pieces = [
        sql.SQL("pg_catalog.jsonb_build_object({})").format(sql.SQL(", ").join(pairs[i : i + ARGUMENTS // 2]))
        for i in range(0, len(pairs), ARGUMENTS // 2)
    ]
    return sql.SQL(" || ").join(pieces)


def table_identifier(table: str) -> sql.Identifier:
    schema, _, name = table.partition(".")
    return sql.Identifier(schema, name)


def passes(row_filter: str | None) -> sql.Composed | sql.SQL:
    """The WHERE clause of the rows a subscriber should hold: the declared filter being true.

    The declared filter, not the installed `(<f>) IS NOT FALSE` form: that
    form exists only to let pglogical pass deletes; on a NOT NULL column both
    agree, and a row whose filter is NULL is not approved.
    """
    if row_filter is None:
        return sql.SQL("true")
    # Never the text as written: the one row_filter.filter_sql writes from
    # the checked parse tree (FilterRefused for anything not allowed).
    return sql.SQL("COALESCE({}, false)").format(sql.SQL(filter_sql(row_filter)))


@dataclass
class TableSide:
    """One node's rows of one table, restricted by `where` (providers: the filter; subscriber: true)."""

    session: NodeSession
    table: str
    key: str
    columns: tuple[str, ...]
    where: sql.Composed | sql.SQL

    def _format(self, name: str) -> sql.Composed:
        return statement(name).format(
            table=table_identifier(self.table),
            key=sql.Identifier(self.key),
            columns=sql.SQL(", ").join(sql.Identifier("t", c) for c in self.columns),
            filter=self.where,
        )

    def summaries(self, probes: Sequence[Probe]) -> dict[str, Summary]:
        ranges = [bounds(p.prefix) for p in probes]
        rows = self.session.execute(
            self._format("summaries"),
            {
                "lo": [r[0] for r in ranges],
                "hi": [r[1] for r in ranges],
                "width": [text_width(p.depth) for p in probes],
            },
        )
        return {key_hex(str(bucket)): Summary(int(n), int(x)) for bucket, n, x in rows}

    def rows(self, prefixes: Sequence[str]) -> dict[str, str]:
        ranges = [bounds(p) for p in prefixes]
        rows = self.session.execute(
            self._format("rows"), {"lo": [r[0] for r in ranges], "hi": [r[1] for r in ranges]}
        )
        return {str(key): str(h) for key, h in rows}

    def fetch(self, keys: Sequence[str]) -> list[str]:
        """The passing rows of these keys as JSON text, compared columns only."""
        query = statement("fetch").format(
            table=table_identifier(self.table),
            key=sql.Identifier(self.key),
            values=values_array(self.columns),
            filter=self.where,
        )
        return [str(row[0]) for row in self.session.execute(query, {"keys": list(keys)})]

    def passing(self, keys: Sequence[str]) -> set[str]:
        """Which of these keys pass here now."""
        rows = self.session.execute(self._format("passing"), {"keys": list(keys)})
        return {str(row[0]) for row in rows}
