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
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from pglast import ast, parse_sql
from pglast.enums import A_Expr_Kind, BoolExprType, BoolTestType, MinMaxOp, NullTestType
from pglast.parser import ParseError, scan
from pglast.visitors import Visitor

from reconciler.errors import ReconcileError
from reconciler.filter_sql import (
    COMPARISONS,
    FUNCTIONS,
    LIKE_OPERATORS,
    OPERATORS,
    REGEX_OPERATORS,
    ArrayOp,
    Between,
    BoolOp,
    BoolTest,
    Cast,
    Coalesce,
    Column,
    Const,
    Distinct,
    Expr,
    Func,
    InList,
    MinMax,
    Not,
    NullIf,
    NullTest,
    Op,
    children,
    columns,
    compared_columns,
    emit,
    pattern_columns,
    quote_string,
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
# A number as the lexer's token must look: plain decimal (pglast also reads
# 0x1F and 1_000, which PostgreSQL 15 does not).
_DECIMAL = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

SYSTEM_COLUMNS = frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "oid"})
_ARITHMETIC = {"+", "-", "*", "/", "%", "^", "||", "|/", "||/", "@", "&", "|", "#", "<<", ">>"}
# Arguments each allowed function takes: length(bytea, encoding) raises on an
# unknown encoding or bytes that are not in it, so length takes one only.
_ARITY = {"lower": (1,), "upper": (1,), "length": (1,), "char_length": (1,)} | {
    name: (1, 2) for name in ("btrim", "ltrim", "rtrim")
}
_BOOL_TEST = {
    BoolTestType.IS_TRUE: "IS TRUE",
    BoolTestType.IS_NOT_TRUE: "IS NOT TRUE",
    BoolTestType.IS_FALSE: "IS FALSE",
    BoolTestType.IS_NOT_FALSE: "IS NOT FALSE",
    BoolTestType.IS_UNKNOWN: "IS UNKNOWN",
    BoolTestType.IS_NOT_UNKNOWN: "IS NOT UNKNOWN",
}

WHY = (
    "a filter that is not immutable or can raise an error at run time stops the provider's walsender"
    " on the first row it fails on, and that link stays down for good"
)
FUNCTION_LIST = ", ".join(FUNCTIONS) + " (and TRIM, COALESCE, NULLIF, GREATEST, LEAST)"
OPERATOR_LIST = "= <> != < > <= >= LIKE ILIKE ~ ~* !~ !~*"
ALLOWED = (
    "a row filter may use only plain columns of the table, string, number, boolean and NULL constants,"
    f" the operators {OPERATOR_LIST}, AND, OR, NOT, IS [NOT] NULL/TRUE/FALSE/UNKNOWN,"
    " IS [NOT] DISTINCT FROM, [NOT] IN and [NOT] BETWEEN with constants, and the functions " + FUNCTION_LIST
)


class FilterRefused(ReconcileError, ValueError):
    """A filter the tool will not send to any server; the message says why."""


def _described(node: Any) -> str:
    """What a refused node is, in SQL's words, for a message."""
    if isinstance(node, ast.SQLValueFunction):
        return str(node.op.name).removeprefix("SVFOP_").removesuffix("_N")
    names = {
        ast.A_ArrayExpr: "an ARRAY",
        ast.A_Indirection: "an array subscript or a field selection",
        ast.CaseExpr: "CASE",
        ast.RowExpr: "a row constructor",
        ast.NamedArgExpr: "a named argument",
        ast.GroupingFunc: "GROUPING",
    }
    return names.get(type(node), type(node).__name__)


class _Builder:
    """pglast's parse tree -> filter_sql tree, collecting every reason to refuse.

    `server_forms`: also read what PostgreSQL's own text of an accepted filter
    holds (pg_get_expr: casts such as 'approved'::text, `= ANY (ARRAY[...])`
    for IN), which the plan carries to apply; a declared filter may hold
    neither, and the checks that decide a run-time failure are made on it.
    """

    def __init__(self, server_forms: bool, max_depth: int) -> None:
        self.server_forms = server_forms
        self.max_depth = max_depth
        self.problems: list[str] = []
        self._depth = 0

    def refuse(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

    def expr(self, node: Any) -> Expr | None:
        if self._depth >= self.max_depth:
            self.refuse(f"row_filter is nested deeper than {self.max_depth} levels")
            return None
        self._depth += 1
        try:
            return self._node(node)
        finally:
            self._depth -= 1

    def all(self, nodes: Any) -> tuple[Expr, ...] | None:
        built = [self.expr(n) for n in nodes or ()]
        kept = tuple(b for b in built if b is not None)
        return kept if len(kept) == len(built) else None

    def _node(self, node: Any) -> Expr | None:
        if isinstance(node, ast.ColumnRef):
            return self._column(node)
        if isinstance(node, ast.A_Const):
            return self._const(node)
        if isinstance(node, ast.BoolExpr):
            return self._bool(node)
        if isinstance(node, ast.A_Expr):
            return self._a_expr(node)
        if isinstance(node, ast.FuncCall):
            return self._func(node)
        if isinstance(node, ast.NullTest):
            arg = self.expr(node.arg)
            return None if arg is None else NullTest(arg, node.nulltesttype == NullTestType.IS_NOT_NULL)
        if isinstance(node, ast.BooleanTest):
            arg = self.expr(node.arg)
            return None if arg is None else BoolTest(arg, _BOOL_TEST[node.booltesttype])
        if isinstance(node, ast.CoalesceExpr):
            args = self.all(node.args)
            return None if args is None else Coalesce(args)
        if isinstance(node, ast.MinMaxExpr):
            args = self.all(node.args)
            if args is None:
                return None
            return MinMax("GREATEST", args) if node.op == MinMaxOp.IS_GREATEST else MinMax("LEAST", args)
        if isinstance(node, ast.TypeCast):
            if self.server_forms:
                return self._cast(node)
            names = ".".join(str(getattr(n, "sval", "?")) for n in node.typeName.names or ())
            self.refuse(
                f"row_filter casts to {names.removeprefix('pg_catalog.')}: a cast can raise an error at run"
                " time (a text that is not a number or a date); compare the column with a plain constant,"
                f" which PostgreSQL reads as the column's type; {WHY}"
            )
        elif isinstance(node, ast.SubLink):
            self.refuse(
                "row_filter must not contain a subquery: a filter reads only the row being replicated"
            )
        elif isinstance(node, ast.ParamRef):
            self.refuse("row_filter must not contain parameters ($1): a filter is installed as fixed text")
        elif isinstance(node, ast.SQLValueFunction):
            self.refuse(
                f"row_filter uses {_described(node)}: its value changes with the session or the clock,"
                f" so the filter is not immutable; {WHY}"
            )
        elif isinstance(node, ast.CollateClause):
            self.refuse(
                "row_filter uses COLLATE: a filter compares with the column's own collation"
                " (another may be missing, or sort differently, on another node)"
            )
        else:
            self.refuse(f"row_filter uses {_described(node)}: {ALLOWED}")
        return None

    def _column(self, node: ast.ColumnRef) -> Expr | None:
        if any(isinstance(f, ast.A_Star) for f in node.fields):
            self.refuse("row_filter must not be '*'")
            return None
        names = [str(f.sval) for f in node.fields if isinstance(f, ast.String)]
        if len(names) != 1 or len(node.fields) != 1:
            self.refuse(
                f"row_filter names the column {'.'.join(names)}: only a plain column name of the table"
                " is allowed, without a table or schema before it"
            )
            return None
        if names[0] in SYSTEM_COLUMNS:
            self.refuse(
                f"row_filter reads the system column {names[0]}: its value depends on where and when each"
                " node stored the row, not on the row; only the table's own columns are allowed"
            )
            return None
        return Column(names[0])

    def _const(self, node: ast.A_Const) -> Expr | None:
        if node.isnull:
            return Const("null", "")
        value = node.val
        if isinstance(value, ast.Integer):
            return Const("integer", str(value.ival))
        if isinstance(value, ast.Boolean):
            return Const("boolean", "true" if value.boolval else "false")
        if isinstance(value, ast.String):
            return Const("string", str(value.sval))
        if isinstance(value, ast.Float):
            text = str(value.fval)
            if not _DECIMAL.fullmatch(text):
                self.refuse(f"row_filter has the number {text}: write numbers in plain decimal")
                return None
            # Decimal, not float: float('1e-400') is 0.0, and would pass as zero.
            magnitude = abs(Decimal(text))
            if not self.server_forms and (magnitude >= Decimal("1e38") or 0 < magnitude < Decimal("1e-37")):
                self.refuse(
                    f"row_filter has the number {text}, which is out of range for a real column compared"
                    f" with it, an error raised at run time; {WHY}"
                )
                return None
            return Const("float", text)
        self.refuse(
            "row_filter has a bit-string constant: only string, number, boolean and NULL constants"
            " are allowed"
        )
        return None

    def _bool(self, node: ast.BoolExpr) -> Expr | None:
        args = self.all(node.args)
        if args is None:
            return None
        if node.boolop == BoolExprType.NOT_EXPR:
            return Not(args[0])
        op: Literal["AND", "OR"] = "AND" if node.boolop == BoolExprType.AND_EXPR else "OR"
        # Flat, so that a tree and the text it is written as read back the same
        # (PostgreSQL's parser flattens `(a AND b) AND c` itself).
        flat: list[Expr] = []
        for a in args:
            flat.extend(a.args if isinstance(a, BoolOp) and a.op == op else (a,))
        return BoolOp(op, tuple(flat))

    def _constants(self, items: tuple[Expr, ...], what: str) -> bool:
        if self.server_forms or all(isinstance(i, Const) for i in items):
            return True
        self.refuse(f"row_filter's {what} must hold only constants")
        return False

    def _a_expr(self, node: ast.A_Expr) -> Expr | None:
        kind = node.kind
        names = [str(n.sval) for n in node.name or () if isinstance(n, ast.String)]
        op = names[-1] if names else "?"
        if kind in (A_Expr_Kind.AEXPR_OP, A_Expr_Kind.AEXPR_LIKE, A_Expr_Kind.AEXPR_ILIKE):
            return self._operator(node, names, op)
        if kind in (A_Expr_Kind.AEXPR_DISTINCT, A_Expr_Kind.AEXPR_NOT_DISTINCT, A_Expr_Kind.AEXPR_NULLIF):
            left, right = self.expr(node.lexpr), self.expr(node.rexpr)
            if left is None or right is None:
                return None
            if kind == A_Expr_Kind.AEXPR_NULLIF:
                return NullIf(left, right)
            return Distinct(left, right, kind == A_Expr_Kind.AEXPR_NOT_DISTINCT)
        if kind == A_Expr_Kind.AEXPR_IN:
            arg, items = self.expr(node.lexpr), self.all(node.rexpr)
            if arg is None or items is None or not self._constants(items, "IN list"):
                return None
            return InList(arg, items, op == "<>")
        if kind in (A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_NOT_BETWEEN):
            arg, bounds = self.expr(node.lexpr), self.all(node.rexpr)
            if arg is None or bounds is None or not self._constants(bounds, "BETWEEN bounds"):
                return None
            return Between(arg, bounds[0], bounds[1], kind == A_Expr_Kind.AEXPR_NOT_BETWEEN)
        if kind in (A_Expr_Kind.AEXPR_OP_ANY, A_Expr_Kind.AEXPR_OP_ALL):
            if self.server_forms and len(names) == 1 and isinstance(node.rexpr, ast.A_ArrayExpr):
                left, items = self.expr(node.lexpr), self.all(node.rexpr.elements)
                if left is None or items is None or op not in COMPARISONS:
                    self.refuse(f"{op} ANY/ALL with this operator cannot be written out again")
                    return None
                return ArrayOp(op, kind == A_Expr_Kind.AEXPR_OP_ALL, left, items)
            self.refuse(f"row_filter uses {op} ANY/ALL (...): write IN (constants) or NOT IN (constants)")
            return None
        if kind in (A_Expr_Kind.AEXPR_BETWEEN_SYM, A_Expr_Kind.AEXPR_NOT_BETWEEN_SYM):
            self.refuse("row_filter uses BETWEEN SYMMETRIC: write the bounds in order with BETWEEN")
            return None
        if kind == A_Expr_Kind.AEXPR_SIMILAR:
            self.refuse(
                "row_filter uses SIMILAR TO: write a LIKE pattern or a regular expression (~) instead"
            )
            return None
        self.refuse(f"row_filter uses {kind.name}: {ALLOWED}")  # pragma: no cover - every kind is above
        return None

    def _operator(self, node: ast.A_Expr, names: list[str], op: str) -> Expr | None:
        if len(names) != 1:
            self.refuse(
                f"row_filter uses the schema-qualified operator OPERATOR({'.'.join(names)}): only the"
                f" built-in operators {OPERATOR_LIST} are allowed; another operator may be user-defined,"
                f" not immutable, or raise an error at run time; {WHY}"
            )
            return None
        if op in _ARITHMETIC:
            self.refuse(
                f"row_filter uses the operator '{op}': arithmetic and text operators can raise an error at"
                f" run time (division by zero, overflow), and do not give a boolean; {WHY}"
            )
            return None
        if op not in OPERATORS or node.lexpr is None:
            self.refuse(
                f"row_filter uses the operator '{op}': only the built-in operators {OPERATOR_LIST} are"
                f" allowed; another operator may be user-defined, not immutable, or raise an error at run"
                f" time; {WHY}"
            )
            return None
        if isinstance(node.rexpr, ast.FuncCall) and node.rexpr.funcname[-1].sval == "like_escape":
            self.refuse("row_filter uses LIKE ... ESCAPE: not allowed; the escape character is the backslash")
            return None
        left, right = self.expr(node.lexpr), self.expr(node.rexpr)
        if left is None or right is None:
            return None
        if (op in LIKE_OPERATORS or op in REGEX_OPERATORS) and not self._pattern(op, right):
            return None
        return Op(op, left, right)

    def _pattern(self, op: str, pattern: Expr) -> bool:
        """Whether a LIKE pattern or regular expression cannot raise at run time, as far as pglast tells."""
        if self.server_forms:
            return True
        what = f"{LIKE_OPERATORS[op]} pattern" if op in LIKE_OPERATORS else "regular expression"
        if not (isinstance(pattern, Const) and pattern.kind == "string"):
            self.refuse(
                f"row_filter's {what} must be a string constant: one read from the row can be invalid"
                f" and raise an error at run time; {WHY}"
            )
            return False
        text = pattern.value
        trailing = len(text) - len(text.rstrip("\\"))
        if op in LIKE_OPERATORS and trailing % 2 == 1:
            self.refuse(
                f"row_filter's {what} {quote_string(text)} ends with a backslash that escapes nothing:"
                f" PostgreSQL raises 'LIKE pattern must not end with escape character' on every row it"
                f" compares; {WHY}"
            )
            return False
        # Against a bytea column the constant is read as bytea first: '\x5c'
        # and '\\' are one backslash byte there (only LIKE exists for bytea).
        as_bytes = _as_bytea(text) if op in ("~~", "!~~") else None
        if as_bytes is not None and (len(as_bytes) - len(as_bytes.rstrip(b"\\"))) % 2 == 1:
            self.refuse(
                f"row_filter's {what} {quote_string(text)} ends with a backslash that escapes nothing when"
                f" read as a bytea value (how PostgreSQL reads it for a bytea column): PostgreSQL raises"
                f" 'LIKE pattern must not end with escape character' on the rows it compares; {WHY}"
            )
            return False
        return True

    def _func(self, node: ast.FuncCall) -> Expr | None:
        parts = [str(getattr(n, "sval", "?")) for n in node.funcname]
        shown = ".".join(parts)
        name = parts[-1] if len(parts) == 1 or (len(parts) == 2 and parts[0] == "pg_catalog") else None
        if name not in FUNCTIONS:
            self.refuse(
                f"row_filter calls {shown}(): only these built-in functions are allowed:"
                f" {FUNCTION_LIST}; {WHY}"
            )
            return None
        if (
            node.agg_star
            or node.agg_distinct
            or node.func_variadic
            or node.agg_order
            or node.agg_filter is not None
            or node.over is not None
            or node.agg_within_group
        ):
            self.refuse(
                f"row_filter calls {shown}() with aggregate, window or VARIADIC syntax:"
                " only a plain call is allowed"
            )
            return None
        args = self.all(node.args)
        if args is None:
            return None
        if not self.server_forms and len(args) not in _ARITY[name]:
            takes = " or ".join(str(n) for n in _ARITY[name])
            self.refuse(f"row_filter calls {name}() with {len(args)} arguments: allowed here with {takes}")
            return None
        return Func(name, args)

    def _cast(self, node: ast.TypeCast) -> Expr | None:
        tn = node.typeName
        names = tuple(str(n.sval) for n in tn.names or () if isinstance(n, ast.String))
        typmods = [
            m.val.ival
            for m in tn.typmods or ()
            if isinstance(m, ast.A_Const) and isinstance(m.val, ast.Integer)
        ]
        bounds = [getattr(b, "ival", None) for b in tn.arrayBounds or ()]
        if (
            not names
            or len(names) != len(tn.names)
            or len(typmods) != len(tn.typmods or ())
            or tn.setof
            or tn.pct_type
            or bounds not in ([], [-1])
        ):
            self.refuse("a cast in this filter text cannot be written out again")
            return None
        arg = self.expr(node.arg)
        return None if arg is None else Cast(arg, names, tuple(int(str(m)) for m in typmods), bool(bounds))


def _as_bytea(text: str) -> bytes | None:
    """The bytes PostgreSQL's bytea input makes of `text` (hex or escape format); None if it is no bytea."""
    if text.startswith("\\x"):
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            return None
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] != "\\":
            out += text[i].encode()
            i += 1
        elif text[i + 1 : i + 2] == "\\":
            out += b"\\"
            i += 2
        elif re.fullmatch(r"[0-3][0-7][0-7]", text[i + 1 : i + 4]):
            out.append(int(text[i + 1 : i + 4], 8))
            i += 4
        else:
            return None
    return bytes(out)


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
    builder = _Builder(server_forms, MAX_DEPTH if declared else RE_READ_DEPTH)
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
