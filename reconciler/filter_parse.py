"""A row filter's parse tree (pglast) -> filter_sql's tree: the allow-list per node, each refusal and why."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, BoolTestType, MinMaxOp, NullTestType

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
    quote_string,
)

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


class Builder:
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
