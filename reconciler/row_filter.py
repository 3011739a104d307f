"""Offline checks of row filters with PostgreSQL's own parser (pglast): one boolean expression, nothing else.

What can be decided without a server is decided here (syntax, statements,
subqueries, obvious non-booleans). Whether a column exists or the expression
is boolean for the table's real types is checked on the node during `plan`.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from pglast import ast, parse_sql
from pglast.parser import ParseError, scan
from pglast.visitors import Visitor

_AT_INDEX = re.compile(r", at index \d+$")

_ARITHMETIC = {"+", "-", "*", "/", "%", "^", "||"}


class _Collect(Visitor):
    """Collects the nodes the checks care about, wherever they sit in the tree."""

    def __init__(self) -> None:
        self.sublinks = 0
        self.params = 0
        self.windows = 0
        self.columns: set[str] = set()

    def visit_SubLink(self, ancestors: Any, node: ast.SubLink) -> None:
        self.sublinks += 1

    def visit_ParamRef(self, ancestors: Any, node: ast.ParamRef) -> None:
        self.params += 1

    def visit_FuncCall(self, ancestors: Any, node: ast.FuncCall) -> None:
        if node.over is not None:
            self.windows += 1

    def visit_ColumnRef(self, ancestors: Any, node: ast.ColumnRef) -> None:
        fields = [str(f.sval) for f in node.fields if isinstance(f, ast.String)]
        if fields:
            self.columns.add(fields[-1])


def _parse_expression(text: str) -> Any:
    """The expression node of `SELECT (<text>)`, or raise ParseError."""
    stmts = parse_sql(f"SELECT ({text})")
    if len(stmts) != 1:
        raise ParseError("more than one statement")
    return stmts[0].stmt.targetList[0].val


def check_row_filter(text: str) -> list[str]:
    """Every reason `text` is not exactly one SQL boolean expression; empty when fine."""
    if not text.strip():
        return ["row_filter is empty"]
    try:
        tokens = scan(text)
    except ParseError as exc:
        return [f"row_filter is not valid SQL: {_AT_INDEX.sub('', str(exc))}"]
    if any(tok.name == "ASCII_59" for tok in tokens):
        return ["row_filter contains ';': it must be one boolean expression, not statements"]
    try:
        expr = _parse_expression(text)
        # Parsed unwrapped as well: `a) OR (b` parses only inside the parentheses
        # added above, and would change meaning once installed as `(<filter>) IS NOT FALSE`.
        bare = parse_sql(f"SELECT {text}")
    except ParseError as exc:
        # The parser's offset counts the SELECT wrapper, so it would mislead.
        return [f"row_filter is not one valid SQL expression: {_AT_INDEX.sub('', str(exc))}"]
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
        return ["row_filter must be exactly one boolean expression"]
    problems: list[str] = []
    collected = _Collect()
    collected(expr)
    if collected.sublinks:
        problems.append("row_filter must not contain a subquery")
    if collected.params:
        problems.append("row_filter must not contain parameters ($1)")
    if collected.windows:
        problems.append("row_filter must not contain window functions")
    if isinstance(expr, ast.A_Const) and not isinstance(expr.val, ast.Boolean):
        problems.append("row_filter is a constant that is not boolean")
    if isinstance(expr, ast.A_Expr) and expr.name and expr.name[-1].sval in _ARITHMETIC:
        problems.append("row_filter is an arithmetic or text expression, not a boolean one")
    if isinstance(expr, ast.ColumnRef) and any(isinstance(f, ast.A_Star) for f in expr.fields):
        problems.append("row_filter must not be '*'")
    return problems


@cache
def filter_columns(text: str) -> frozenset[str]:
    """Names of the columns a (valid) filter reads; they must be NOT NULL for `IS NOT FALSE`.

    Cached: preflight asks it for every node, and the few filters of a
    network are the same on all of them.
    """
    collected = _Collect()
    collected(_parse_expression(text))
    return frozenset(collected.columns)


# What a self-contained filter may use: columns, constants, AND/OR/NOT, IS
# [NOT] NULL/TRUE/FALSE, and these operators (LIKE is ~~, ILIKE ~~*).
_PLAIN_NODES = (
    ast.ColumnRef,
    ast.A_Const,
    ast.BoolExpr,
    ast.NullTest,
    ast.BooleanTest,
    ast.A_Expr,
    ast.String,
    ast.Integer,
    ast.Float,
    ast.Boolean,
)
_PLAIN_OPERATORS = {
    "=", "<>", "!=", "<", ">", "<=", ">=",
    "~~", "!~~", "~~*", "!~~*", "~", "!~", "~*", "!~*",
    "BETWEEN", "NOT BETWEEN",
}  # fmt: skip


class _Plain(Visitor):
    def __init__(self) -> None:
        self.plain = True

    def visit(self, ancestors: Any, node: Any) -> None:
        if not isinstance(node, _PLAIN_NODES):
            self.plain = False  # a function call, a cast, an array, a subquery...
        elif isinstance(node, ast.A_Expr):
            names = [getattr(n, "sval", None) for n in node.name or ()]
            if len(names) != 1 or names[0] not in _PLAIN_OPERATORS:
                self.plain = False  # a schema-qualified or user-defined operator
        elif isinstance(node, ast.ColumnRef) and any(isinstance(f, ast.A_Star) for f in node.fields):
            self.plain = False


@cache
def is_self_contained(text: str) -> bool:
    """True when a filter's meaning depends only on its table's columns and the built-in operators.

    Such a filter normalises the same way as long as the server, the
    session's search_path and the table's columns are the same, so its normal
    form can be remembered (inspect/filter_cache.py). A filter that calls a
    function, casts to a type or uses another operator depends on objects
    that can change without any of those changing: it is normalised on
    every plan.
    """
    try:
        expr = _parse_expression(text)
    except ParseError:
        return False
    plain = _Plain()
    plain(expr)
    return plain.plain

