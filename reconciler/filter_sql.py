"""Row filters as a small typed tree, and the one emitter of the SQL text the tool sends for them.

A filter never reaches a server as it was written: row_filter.py reads it
with PostgreSQL's parser (pglast) into this tree, and `emit` writes the tree
out again. The text is the same for the server whatever its session
settings, because:

- every identifier is double-quoted, embedded quotes doubled;
- a string constant without a backslash is '...' (quotes doubled), which
  reads the same with standard_conforming_strings on or off; one with a
  backslash is E'...' (backslashes and quotes doubled), which ignores that
  setting; nothing is ever dollar-quoted;
- numbers are written from their value (integers) or from a token checked
  against a plain decimal pattern (row_filter.py), negative ones in
  parentheses, so no sign can merge with an operator;
- functions are schema-qualified (pg_catalog.lower);
- every compound sub-expression is parenthesised, so precedence cannot change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Operators a tree may hold. LIKE and ILIKE are the operators ~~ and ~~*
# (that is how PostgreSQL's parser reads them); they are written as keywords.
COMPARISONS = ("=", "<>", "<", ">", "<=", ">=")
LIKE_OPERATORS = {"~~": "LIKE", "!~~": "NOT LIKE", "~~*": "ILIKE", "!~~*": "NOT ILIKE"}
REGEX_OPERATORS = ("~", "~*", "!~", "!~*")
OPERATORS = (*COMPARISONS, *LIKE_OPERATORS, *REGEX_OPERATORS)

# Built-in functions a filter may call: immutable, and they cannot raise on
# valid input (length with one argument only: length(bytea, encoding) can).
FUNCTIONS = ("lower", "upper", "btrim", "ltrim", "rtrim", "length", "char_length")

BOOL_TESTS = ("IS TRUE", "IS NOT TRUE", "IS FALSE", "IS NOT FALSE", "IS UNKNOWN", "IS NOT UNKNOWN")


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Const:
    """A constant: `value` is the string, the number's decimal text, 'true'/'false', or '' for NULL."""

    kind: Literal["string", "integer", "float", "boolean", "null"]
    value: str


@dataclass(frozen=True)
class Op:
    op: str  # one of OPERATORS
    left: Expr
    right: Expr


@dataclass(frozen=True)
class BoolOp:
    op: Literal["AND", "OR"]
    args: tuple[Expr, ...]  # flat: no argument is a BoolOp with the same op


@dataclass(frozen=True)
class Not:
    arg: Expr


@dataclass(frozen=True)
class NullTest:
    arg: Expr
    negated: bool  # IS NOT NULL


@dataclass(frozen=True)
class BoolTest:
    arg: Expr
    test: str  # one of BOOL_TESTS


@dataclass(frozen=True)
class Distinct:
    left: Expr
    right: Expr
    negated: bool  # IS NOT DISTINCT FROM


@dataclass(frozen=True)
class InList:
    arg: Expr
    items: tuple[Expr, ...]
    negated: bool


@dataclass(frozen=True)
class Between:
    arg: Expr
    low: Expr
    high: Expr
    negated: bool


@dataclass(frozen=True)
class Func:
    name: str  # one of FUNCTIONS, always emitted as pg_catalog.<name>
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Coalesce:
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class NullIf:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class MinMax:
    op: Literal["GREATEST", "LEAST"]
    args: tuple[Expr, ...]


# The two forms below appear only in PostgreSQL's own text of a filter
# (pg_get_expr: `'approved'::text`, `x = ANY (ARRAY[...])` for IN), which the
# plan carries to apply; a declared filter may use neither.


@dataclass(frozen=True)
class Cast:
    arg: Expr
    type_names: tuple[str, ...]  # ("pg_catalog", "int4") or ("text",)
    typmods: tuple[int, ...] = ()
    array: bool = False


@dataclass(frozen=True)
class ArrayOp:
    op: str  # one of COMPARISONS
    all: bool  # ALL instead of ANY
    left: Expr
    items: tuple[Expr, ...]


Expr = (
    Column | Const | Op | BoolOp | Not | NullTest | BoolTest | Distinct | InList | Between
    | Func | Coalesce | NullIf | MinMax | Cast | ArrayOp
)  # fmt: skip


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_string(value: str) -> str:
    """A string constant that reads as `value` whatever standard_conforming_strings says."""
    if "\\" in value:
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + value.replace("'", "''") + "'"


def _const(c: Const) -> str:
    if c.kind == "string":
        return quote_string(c.value)
    if c.kind == "null":
        return "NULL"
    if c.kind == "boolean":
        return "true" if c.value == "true" else "false"
    # A negative number in parentheses: `x > -5` must not depend on how a
    # server's lexer joins `>` and `-`.
    return f"({c.value})" if c.value.startswith("-") else c.value


def _list(args: tuple[Expr, ...]) -> str:
    return ", ".join(emit(a) for a in args)


def emit(e: Expr) -> str:
    """The SQL text of a tree (see the module's docstring for why it is safe)."""
    match e:
        case Column(name):
            return quote_ident(name)
        case Const():
            return _const(e)
        case Op(op, left, right):
            return f"({emit(left)} {LIKE_OPERATORS.get(op, op)} {emit(right)})"
        case BoolOp(op, args):
            return "(" + f" {op} ".join(emit(a) for a in args) + ")"
        case Not(arg):
            return f"(NOT {emit(arg)})"
        case NullTest(arg, negated):
            return f"({emit(arg)} IS {'NOT ' if negated else ''}NULL)"
        case BoolTest(arg, test):
            return f"({emit(arg)} {test})"
        case Distinct(left, right, negated):
            return f"({emit(left)} IS {'NOT ' if negated else ''}DISTINCT FROM {emit(right)})"
        case InList(arg, items, negated):
            return f"({emit(arg)} {'NOT ' if negated else ''}IN ({_list(items)}))"
        case Between(arg, low, high, negated):
            return f"({emit(arg)} {'NOT ' if negated else ''}BETWEEN {emit(low)} AND {emit(high)})"
        case Func(name, args):
            return f"pg_catalog.{name}({_list(args)})"
        case Coalesce(args):
            return f"COALESCE({_list(args)})"
        case NullIf(left, right):
            return f"NULLIF({emit(left)}, {emit(right)})"
        case MinMax(op, args):
            return f"{op}({_list(args)})"
        case Cast(arg, type_names, typmods, array):
            typ = ".".join(quote_ident(n) for n in type_names)
            if typmods:
                typ += "(" + ", ".join(str(int(m)) for m in typmods) + ")"
            return f"CAST({emit(arg)} AS {typ}{'[]' if array else ''})"
        case ArrayOp(op, all_, left, items):
            return f"({emit(left)} {op} {'ALL' if all_ else 'ANY'} (ARRAY[{_list(items)}]))"
    raise AssertionError(f"not a filter tree: {e!r}")  # pragma: no cover


def columns(e: Expr) -> frozenset[str]:
    """Every column the tree reads."""
    if isinstance(e, Column):
        return frozenset((e.name,))
    return frozenset().union(*(columns(c) for c in children(e)))


def children(e: Expr) -> tuple[Expr, ...]:
    match e:
        case Column() | Const():
            return ()
        case Op(_, left, right) | Distinct(left, right, _) | NullIf(left, right):
            return (left, right)
        case BoolOp(_, args) | Func(_, args) | Coalesce(args) | MinMax(_, args):
            return args
        case Not(arg) | NullTest(arg, _) | BoolTest(arg, _) | Cast(arg, _, _, _):
            return (arg,)
        case InList(arg, items, _):
            return (arg, *items)
        case Between(arg, low, high, _):
            return (arg, low, high)
        case ArrayOp(_, _, left, items):
            return (left, *items)
    raise AssertionError(f"not a filter tree: {e!r}")  # pragma: no cover


def regex_patterns(e: Expr) -> tuple[tuple[str, bool], ...]:
    """(pattern, case-insensitive) of every regular-expression constant, in order, each once."""
    found: list[tuple[str, bool]] = []
    if (
        isinstance(e, Op)
        and e.op in REGEX_OPERATORS
        and isinstance(e.right, Const)
        and e.right.kind == "string"
    ):
        found.append((e.right.value, e.op.endswith("*")))
    for c in children(e):
        found.extend(p for p in regex_patterns(c) if p not in found)
    return tuple(dict.fromkeys(found))


def pattern_columns(e: Expr) -> frozenset[str]:
    """Columns matched by a LIKE, ILIKE or regular expression (the probe checks their collation)."""
    found = frozenset[str]()
    if isinstance(e, Op) and (e.op in LIKE_OPERATORS or e.op in REGEX_OPERATORS):
        found = columns(e.left)
    return found.union(*(pattern_columns(c) for c in children(e)))


def compared_columns(e: Expr) -> frozenset[str]:
    """Columns read other than as the operand of IS [NOT] NULL (the probe checks their types)."""
    if isinstance(e, NullTest) and isinstance(e.arg, Column):
        return frozenset()
    if isinstance(e, Column):
        return frozenset((e.name,))
    return frozenset().union(*(compared_columns(c) for c in children(e)))
