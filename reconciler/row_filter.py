"""Row filters from the desired state: a strict allow-list check, and the only SQL text sent for them.

A filter comes from a merge request: untrusted. It is read with PostgreSQL's
own parser (pglast) into a small tree (filter_sql.py) and accepted only when
it is a declarative predicate over the row that cannot fail at run time. A
filter that raises (division by zero, a cast of a bad text, an invalid
pattern) stops the provider's walsender on the first row it fails on; queued
WAL is decoded again with the filter that was in force when it was written,
so correcting the filter does not help and the link stays down for good
(REPLICATION-NOTES). The tool never sends a filter as it was written:
`filter_sql` writes it out again from the tree. Whether a column exists and
the expression is boolean for the table's real types is checked on the node
during `plan` (inspect/probe.sql), which also compiles every regular
expression the filter holds.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from pglast import ast, parse_sql
from pglast.parser import ParseError, scan
from pglast.visitors import Visitor

from reconciler.errors import ReconcileError
from reconciler.filter_parse import WHY, Builder
from reconciler.filter_sql import (
    BoolOp,
    BoolTest,
    Const,
    Expr,
    Not,
    NullTest,
    children,
    columns,
    compared_columns,
    emit,
    pattern_columns,
)
from reconciler.filter_sql import regex_patterns as _tree_regexes

_AT_INDEX = re.compile(r", at index \d+$")

MAX_LENGTH = 4000  # characters of a declared filter; a real one is a line
MAX_DEPTH = 40  # nesting of a declared filter's tree
# The limits above are for the declared text. What the tool reads again is
# its own text (identifiers quoted, every operation parenthesised, functions
# qualified: up to about three times as long), the installed
# `(<filter> IS NOT FALSE)` (a level deeper), verify's AND of several sets'
# filters, or PostgreSQL's form with a cast on each constant: a filter that
# passed `validate` must not be refused there, and nothing read is unbounded.
RE_READ_LENGTH = 16 * MAX_LENGTH
RE_READ_DEPTH = 2 * MAX_DEPTH


class FilterRefused(ReconcileError, ValueError):
    """A filter the tool will not send to any server; the message says why."""


def _mixed(tree: Expr) -> list[str]:
    """Why each value expression (a comparison, a function, COALESCE, ...) reading two columns is refused."""
    if isinstance(tree, BoolOp | Not | NullTest | BoolTest):
        return [m for c in children(tree) for m in _mixed(c)]
    read = columns(tree)
    if len(read) <= 1:
        return []
    return [
        f"row_filter compares or combines the columns {', '.join(sorted(read))} in one expression:"
        " PostgreSQL may then convert one of them at run time (a numeric to double precision"
        " overflows, a date to a timestamp), find no collation to compare two text columns with,"
        " or choose an operator that depends on the time zone; compare each column with constants"
        f" only; {WHY}"
    ]


def _parse_expression(text: str) -> Any:
    """The expression node of `SELECT (<text>)`, or raise ParseError."""
    stmts = parse_sql(f"SELECT ({text})")
    if len(stmts) != 1:
        raise ParseError("more than one statement")
    return stmts[0].stmt.targetList[0].val


@cache
def _read(text: str, server_forms: bool, declared: bool = False) -> tuple[Expr | None, tuple[str, ...]]:
    """The filter's tree, or None and every reason it is refused.

    `declared`: the desired state's own text, held to MAX_LENGTH and
    MAX_DEPTH; any other (the tool's or PostgreSQL's) to the RE_READ limits.
    """
    if not text.strip():
        return None, ("row_filter is empty",)
    max_length = MAX_LENGTH if declared else RE_READ_LENGTH
    if len(text) > max_length:
        return None, (f"row_filter is longer than {max_length} characters",)
    try:
        tokens = scan(text)
    except ParseError as exc:
        return None, (f"row_filter is not valid SQL: {_AT_INDEX.sub('', str(exc))}",)
    if any(tok.name == "ASCII_59" for tok in tokens):
        return None, ("row_filter contains ';': it must be one boolean expression, not statements",)
    try:
        expr = _parse_expression(text)
        # Parsed unwrapped as well: `a) OR (b` parses only inside the parentheses
        # added above, and would change meaning once installed as `(<filter>) IS NOT FALSE`.
        bare = parse_sql(f"SELECT {text}")
    except ParseError as exc:
        # The parser's offset counts the SELECT wrapper, so it would mislead.
        return None, (f"row_filter is not one valid SQL expression: {_AT_INDEX.sub('', str(exc))}",)
    select = bare[0].stmt if len(bare) == 1 else None
    if (
        not isinstance(select, ast.SelectStmt)
        or select.targetList is None
        or len(select.targetList) != 1
        or select.fromClause
        or select.whereClause
        or select.groupClause
        or select.sortClause
        or select.limitCount
    ):
        return None, ("row_filter must be exactly one boolean expression",)
    builder = Builder(server_forms, MAX_DEPTH if declared else RE_READ_DEPTH)
    tree = builder.expr(expr)
    problems = builder.problems
    if tree is not None and not server_forms:
        problems.extend(m for m in dict.fromkeys(_mixed(tree)) if m not in problems)
    if tree is not None and not server_forms and not columns(tree):
        if isinstance(tree, Const) and tree.kind != "boolean":
            problems.append("row_filter is a constant that is not boolean")
        else:
            problems.append(
                "row_filter reads no column of the table: it does not depend on the row, so it passes"
                " every row or none; leave row_filter out to replicate every row"
            )
    if problems or tree is None:
        return None, tuple(problems) or ("row_filter cannot be read",)
    return tree, ()


def check_row_filter(text: str) -> list[str]:
    """Every reason `text` is not an allowed row filter (module docstring); empty when fine."""
    return list(_read(text, False, True)[1])


@cache
def filter_sql(text: str, *, server_forms: bool = False) -> str:
    """The SQL text the tool sends for a filter: written out again from its parse tree, never as given.

    `server_forms`: `text` may be PostgreSQL's own text of an accepted
    filter (pg_get_expr: casts, `= ANY (ARRAY[...])`), as a plan carries it
    to apply; the run-time checks were made on the declared filter.
    FilterRefused when the text is not allowed.
    """
    tree, problems = _read(text, server_forms)
    if tree is None:
        raise FilterRefused(problems[0])
    out = emit(tree)
    # The emitter is small and tested; still, what is sent must read back as
    # exactly the tree that was checked, or it is not sent.
    if _read(out, server_forms)[0] != tree:
        raise FilterRefused("row_filter cannot be written out again with the same meaning")
    return out


def regex_patterns(text: str) -> tuple[tuple[str, bool], ...]:
    """(pattern, case-insensitive) of each regular expression of an allowed filter; the node compiles them."""
    tree, _ = _read(text, False)
    return () if tree is None else _tree_regexes(tree)


def probed_columns(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Columns of an allowed filter the probe checks: (matched by a pattern, compared), each sorted.

    What the CHECK the probe adds cannot show, because PostgreSQL raises it
    only when a row is compared: LIKE or a regular expression on a column
    with a nondeterministic collation, and an array or composite compared
    element by element (json, point: no equality, no ordering).
    """
    tree, _ = _read(text, False)
    if tree is None:
        return (), ()
    return tuple(sorted(pattern_columns(tree))), tuple(sorted(compared_columns(tree)))


class _Columns(Visitor):
    def __init__(self) -> None:
        self.columns: set[str] = set()

    def visit_ColumnRef(self, ancestors: Any, node: ast.ColumnRef) -> None:
        fields = [str(f.sval) for f in node.fields if isinstance(f, ast.String)]
        if fields:
            self.columns.add(fields[-1])


@cache
def filter_columns(text: str) -> frozenset[str]:
    """Names of the columns a (valid) filter reads; they must be NOT NULL for `IS NOT FALSE`.

    Cached: preflight asks it for every node, and the few filters of a
    network are the same on all of them.
    """
    collected = _Columns()
    collected(_parse_expression(text))
    return frozenset(collected.columns)


def is_self_contained(text: str) -> bool:
    """True when a filter's normal form depends only on its table's columns, the server and search_path.

    Every allowed filter is: columns, constants, built-in operators, and
    functions of pg_catalog, which filter_sql writes schema-qualified, so no
    object created or dropped in the database changes its meaning. Its
    normal form can be remembered (inspect/filter_cache.py) as long as the
    server, the session's search_path (the operators) and the table's
    columns are the same. A refused filter is never sent, so never remembered.
    """
    return not _read(text, False, True)[1]
