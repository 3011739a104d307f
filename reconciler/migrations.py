"""Schema migrations of the desired state (`migrations/NNNN_<name>.sql`): read and validated offline.

Migrations are the one place where SQL from the desired state runs on the
nodes, so this module only reads and parses them (pglast, PostgreSQL's own
parser); nothing here touches a server. They run in `apply` alone
(engines/migrations.py), in one transaction per node, and the rules below
keep that transaction what it says: no statement that ends it or changes
the settings it runs under.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

import pglast
from pglast import ast
from pglast.enums import AlterTableType, ConstrType, DropBehavior, ObjectType
from pglast.parser import ParseError

from reconciler.errors import Location, Problem
from reconciler.load_input import FileData, NotRead, Unreadable, _read_regular, not_regular
from reconciler.model import Migration

DIRECTORY = "migrations"
NAME = re.compile(r"^(\d{4})_([a-z0-9][a-z0-9_]{0,59})\.sql\Z")
# Far above a real release (a few ALTER TABLEs) and low enough that parsing
# every file of a hostile merge request costs well under a second.
MAX_MIGRATION_BYTES = 256 * 1024
MAX_MIGRATIONS = 1000
MAX_TOTAL_BYTES = 4 * 1024 * 1024
DIRECTIVE = re.compile(r"^--\s*reconcile:\s*(.*?)\s*$")
LEAVES_FIRST = "leaves-first"
# Characters a migration may not hold (as the YAML loader refuses them): a NUL
# ends the text for libpq, an escape drives the terminal that shows a review.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def is_migration_file(name: str) -> bool:
    """A name the migrations directory is read from: `*.sql`, not hidden."""
    return name.endswith(".sql") and not name.startswith(".")


def read_migrations(directory: Path) -> dict[str, FileData]:
    """The `*.sql` entries of `directory/migrations`, read as the YAML files are (no link followed).

    No migrations directory: no migrations. A migrations entry that is a
    link or not a directory is reported by parse_migrations.
    """
    where = directory / DIRECTORY
    try:
        info = os.lstat(where)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        return {str(where): Unreadable(f"cannot be read: {exc.strerror}")}
    if not stat.S_ISDIR(info.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a directory"
        return {str(where): Unreadable(f"the migrations entry is {what}; it must be a directory")}
    names: list[str] = []
    try:
        with os.scandir(where) as scan:
            for entry in scan:
                if is_migration_file(entry.name):
                    names.append(entry.name)
                    if len(names) > MAX_MIGRATIONS:
                        break
    except OSError as exc:
        return {str(where): Unreadable(f"cannot be read: {exc.strerror}")}
    files: dict[str, FileData] = {}
    total = 0
    for name in sorted(names):
        path = str(where / name)
        try:
            entry_info = os.lstat(path)
        except OSError as exc:
            files[path] = Unreadable(f"cannot be read: {exc.strerror}")
            continue
        if stat.S_ISLNK(entry_info.st_mode):
            files[path] = not_regular("a symbolic link")
        elif not stat.S_ISREG(entry_info.st_mode):
            files[path] = not_regular("not a regular file")
        elif entry_info.st_size > MAX_MIGRATION_BYTES or total + entry_info.st_size > MAX_TOTAL_BYTES:
            files[path] = NotRead(entry_info.st_size)
        else:
            files[path] = _read_regular(path)
            total += entry_info.st_size
    return files


def parse_migrations(files: Mapping[str, FileData]) -> tuple[tuple[Migration, ...], list[Problem]]:
    """The migrations in order, or every problem: names, numbering, sizes, text, parse, statements."""
    problems: list[Problem] = []
    if len(files) > MAX_MIGRATIONS:
        first = sorted(files)[0]
        return (), [Problem(Location(first, 1, 1), f"more than {MAX_MIGRATIONS} migration files")]
    numbered: dict[int, str] = {}
    found: list[Migration] = []
    for path, data in sorted(files.items()):
        start = Location(path, 1, 1)
        base = os.path.basename(path)
        match = NAME.match(base)
        if isinstance(data, Unreadable):
            problems.append(Problem(start, data.reason))
            continue
        if match is None:
            problems.append(
                Problem(start, "a migration is named NNNN_<name>.sql (four digits, then a-z, 0-9 and _)")
            )
            continue
        number = int(match.group(1))
        if number in numbered:
            message = f"migration number {match.group(1)} is also used by {numbered[number]}"
            problems.append(Problem(start, message))
            continue
        numbered[number] = path
        if isinstance(data, NotRead) or (isinstance(data, bytes | str) and _size(data) > MAX_MIGRATION_BYTES):
            size = data.size if isinstance(data, NotRead) else _size(data)
            message = f"file is {size} bytes; a migration holds at most {MAX_MIGRATION_BYTES}"
            problems.append(Problem(start, message))
            continue
        raw = data.encode("utf-8") if isinstance(data, str) else data
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            where = _at(path, raw[: exc.start].decode("utf-8", "replace"))
            problems.append(Problem(where, "file is not UTF-8 text"))
            continue
        migration, found_problems = _parse_one(path, base.removesuffix(".sql"), number, text, raw)
        problems += found_problems
        if migration is not None:
            found.append(migration)
    for expected, number in enumerate(sorted(numbered), start=1):
        if number != expected:
            problems.append(
                Problem(
                    Location(numbered[number], 1, 1),
                    f"migration {expected:04d} is missing: migrations are numbered from 0001 without gaps,"
                    " and run in that order",
                )
            )
            break
    if problems:
        return (), problems
    return tuple(sorted(found, key=lambda m: m.id)), []


def _size(data: bytes | str) -> int:
    return len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)


def _at(path: str, before: str) -> Location:
    """The location just after `before` (the text that precedes it in the file)."""
    line = before.count("\n") + 1
    return Location(path, line, len(before) - (before.rfind("\n") + 1) + 1)


_LEAD = re.compile(rb"(?:\s+|--[^\n]*)*")


def _start(raw: bytes, offset: int) -> int:
    """Where the statement the parser places at `offset` begins: after the space and comments before it."""
    lead = _LEAD.match(raw, offset)
    return lead.end() if lead is not None else offset


def _parse_one(
    path: str, name: str, number: int, text: str, raw: bytes
) -> tuple[Migration | None, list[Problem]]:
    problems: list[Problem] = []
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        message = f"the character U+{ord(bad.group()):04X} is not allowed"
        return None, [Problem(_at(path, text[: bad.start()]), message)]
    leaves_first = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        directive = DIRECTIVE.match(line.strip())
        if directive is None:
            continue
        if directive.group(1) == LEAVES_FIRST:
            leaves_first = True
        else:
            problems.append(
                Problem(
                    Location(path, lineno, 1),
                    f"unknown directive '-- reconcile: {directive.group(1)}' (known: {LEAVES_FIRST})",
                )
            )
    try:
        parsed = pglast.parse_sql(text)
    except ParseError as exc:
        message, index = (exc.args + (0,))[:2] if exc.args else ("cannot be parsed", 0)
        # pglast reports a byte offset into the UTF-8 text.
        before = raw[: int(index)].decode("utf-8", "replace")
        return None, [Problem(_at(path, before), f"SQL syntax error: {message}")]
    if not parsed:
        return None, [Problem(Location(path, 1, 1), "the migration holds no statement")]
    if len(parsed) > MAX_STATEMENTS:
        return None, [
            Problem(
                Location(path, 1, 1),
                f"the migration holds {len(parsed)} statements, more than {MAX_STATEMENTS}",
            )
        ]
    creates: list[str] = []
    keys: dict[str, tuple[str, ...]] = {}
    for raw_stmt in parsed:
        stmt = raw_stmt.stmt
        where = _at(path, raw[: _start(raw, raw_stmt.stmt_location or 0)].decode("utf-8", "replace"))
        refusal = _refusal(stmt)
        if refusal is None and stmt is not None:
            refusal = _statement_refusal(stmt)
        if refusal is not None:
            problems.append(Problem(where, refusal))
            continue
        # apply runs it with search_path pg_catalog, pg_temp (db.PINNED), as all of the tool's SQL:
        # every table named must be schema-qualified and outside the tool's and pglogical's schemas.
        for offset, why in _tree_refusals(stmt) if stmt is not None else ():
            at = where if offset is None else _at(path, raw[:offset].decode("utf-8", "replace"))
            problems.append(Problem(at, why))
        relation = stmt.relation if isinstance(stmt, ast.CreateStmt) else None
        if relation is not None and relation.schemaname:
            creates.append(f"{relation.schemaname}.{relation.relname}")
            key = _primary_key(stmt)
            if key:
                keys[f"{relation.schemaname}.{relation.relname}"] = key
    if problems:
        return None, problems
    statements = tuple(str(s).strip() for s in pglast.split(text) if str(s).strip())
    return (
        Migration(
            id=number,
            name=name,
            checksum=hashlib.sha256(raw).hexdigest(),
            statements=statements,
            text=text,
            leaves_first=leaves_first,
            creates=tuple(sorted(set(creates))),
            keys=dict(sorted(keys.items())),
        ),
        [],
    )


def _primary_key(stmt: ast.CreateStmt) -> tuple[str, ...]:
    """The PRIMARY KEY columns of a CREATE TABLE, declared on a column or on the table; () without one."""
    for element in stmt.tableElts or ():
        if isinstance(element, ast.ColumnDef):
            constraints = element.constraints or ()
            if any(c.contype == ConstrType.CONSTR_PRIMARY for c in constraints):
                return (str(element.colname),)
        elif isinstance(element, ast.Constraint) and element.contype == ConstrType.CONSTR_PRIMARY:
            return tuple(str(k.sval) for k in element.keys or ())
    return ()


def _refusal(stmt: ast.Node | None) -> str | None:
    """Why a statement may not be in a migration, or None.

    apply runs each migration in one transaction per node, with lock_timeout,
    statement_timeout and session_replication_role of its own: a statement
    that ends the transaction or changes a setting would undo that promise.
    """
    if isinstance(stmt, ast.TransactionStmt):
        return (
            "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT) is not allowed: apply runs each"
            " migration in one transaction of its own"
        )
    if isinstance(stmt, ast.VariableSetStmt | ast.AlterSystemStmt):
        return "SET, RESET and ALTER SYSTEM are not allowed: apply sets the migration's timeouts and role"
    if isinstance(stmt, ast.IndexStmt) and stmt.concurrent:
        return "CREATE INDEX CONCURRENTLY cannot run inside the migration's transaction"
    if isinstance(stmt, ast.VacuumStmt | ast.CreatedbStmt | ast.DropdbStmt | ast.CreateTableSpaceStmt):
        return "this statement cannot run inside the migration's transaction"
    return None


# The offline check is an allowlist: a migration holds what a schema release
# needs and nothing else, and every function it calls is a pure one of
# pg_catalog (search_path is pg_catalog, pg_temp when it runs). What is not
# named here is refused, so a new kind of statement is refused until added.
MAX_STATEMENTS = 200
_RESERVED_SCHEMAS = frozenset({"reconcile", "pglogical", "information_schema"})
_ALLOWED_STATEMENTS: tuple[type[ast.Node], ...] = (
    ast.CreateStmt, ast.AlterTableStmt, ast.IndexStmt, ast.DropStmt, ast.CommentStmt, ast.ViewStmt,
    ast.CreateSeqStmt, ast.AlterSeqStmt, ast.CreateEnumStmt, ast.AlterEnumStmt, ast.CompositeTypeStmt,
    ast.RenameStmt, ast.UpdateStmt, ast.InsertStmt, ast.DeleteStmt,
)
_ALTER_TABLE = frozenset({
    AlterTableType.AT_AddColumn, AlterTableType.AT_ColumnDefault, AlterTableType.AT_DropNotNull,
    AlterTableType.AT_SetNotNull, AlterTableType.AT_DropColumn, AlterTableType.AT_AddConstraint,
    AlterTableType.AT_ValidateConstraint, AlterTableType.AT_DropConstraint, AlterTableType.AT_AlterColumnType,
})
_DROPPABLE = frozenset({
    ObjectType.OBJECT_TABLE, ObjectType.OBJECT_INDEX, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_SEQUENCE,
    ObjectType.OBJECT_TYPE,
})
_COMMENTABLE = frozenset({
    ObjectType.OBJECT_TABLE, ObjectType.OBJECT_COLUMN, ObjectType.OBJECT_INDEX, ObjectType.OBJECT_VIEW,
    ObjectType.OBJECT_SEQUENCE, ObjectType.OBJECT_TYPE,
})
_RENAMABLE = frozenset({ObjectType.OBJECT_TABLE, ObjectType.OBJECT_COLUMN})
# Pure functions of pg_catalog (some reached through SQL syntax: EXTRACT, TRIM, AT TIME ZONE, POSITION).
_FUNCTIONS = frozenset({
    "lower", "upper", "initcap", "coalesce", "nullif", "now", "gen_random_uuid", "length", "char_length",
    "octet_length", "substring", "substr", "btrim", "ltrim", "rtrim", "trim", "replace", "concat",
    "concat_ws", "left", "right", "split_part", "strpos", "position", "date_trunc", "date_part", "extract",
    "timezone", "to_char", "to_date", "to_timestamp", "to_number", "abs", "round", "trunc", "ceil", "floor",
    "greatest", "least", "md5", "jsonb_build_object", "jsonb_build_array", "json_build_object",
    "json_build_array", "to_jsonb", "to_json", "jsonb_typeof", "jsonb_strip_nulls", "array_length",
    "array_to_string", "string_to_array", "cardinality", "regexp_replace", "make_date", "make_interval",
    "age", "statement_timestamp", "transaction_timestamp", "clock_timestamp", "mod", "sign", "translate",
    "reverse", "encode", "decode", "sha256", "format", "quote_ident", "quote_literal",
})


def _qualified(names: tuple[str, ...]) -> str:
    return ".".join(names)


def _reserved(schema: str | None) -> bool:
    return schema is not None and (schema in _RESERVED_SCHEMAS or schema.startswith("pg_"))


def _names(value: object) -> tuple[str, ...]:
    """The parts of a qualified name (a list of String, or a TypeName)."""
    if isinstance(value, ast.TypeName):
        value = value.names
    if isinstance(value, ast.String):
        return (str(value.sval),)
    if isinstance(value, list | tuple):
        return tuple(str(v.sval) for v in value if isinstance(v, ast.String))
    return ()


def _object_refusal(names: tuple[str, ...], what: str) -> str | None:
    if len(names) < 2:
        return f"schema-qualify the {what} name ({_qualified(names)})"
    if _reserved(names[0]):
        return f"the {what} {_qualified(names)} is in schema {names[0]}, which a migration may not touch"
    return None


def _statement_refusal(stmt: ast.Node) -> str | None:
    """Why this top-level statement is outside what a schema release needs, or None."""
    kind = type(stmt).__name__
    if not isinstance(stmt, _ALLOWED_STATEMENTS):
        return (
            f"{kind} is not allowed in a migration: only tables, columns, constraints, indexes, views,"
            " sequences, types, comments, renames and backfills (INSERT/UPDATE/DELETE) are"
        )
    if isinstance(stmt, ast.AlterTableStmt):
        if stmt.objtype != ObjectType.OBJECT_TABLE:
            return "only ALTER TABLE is allowed (not ALTER INDEX, VIEW, SEQUENCE or other relations)"
        for cmd in stmt.cmds or ():
            if isinstance(cmd, ast.AlterTableCmd) and cmd.subtype not in _ALTER_TABLE:
                return (
                    f"ALTER TABLE {AlterTableType(cmd.subtype).name[3:]} is not allowed: only columns,"
                    " defaults, NOT NULL, types and constraints may change"
                )
    if isinstance(stmt, ast.IndexStmt) and stmt.concurrent:
        return "CREATE INDEX CONCURRENTLY cannot run inside the migration's transaction"
    if isinstance(stmt, ast.DropStmt):
        if stmt.removeType not in _DROPPABLE:
            return (
                f"DROP {ObjectType(stmt.removeType).name[7:]} is not allowed: only tables, indexes,"
                " views, sequences and types"
            )
        if stmt.behavior == DropBehavior.DROP_CASCADE:
            return "DROP ... CASCADE is not allowed: drop the dependent objects by name"
        for obj in stmt.objects or ():
            refusal = _object_refusal(_names(obj), "dropped object")
            if refusal is not None:
                return refusal
    if isinstance(stmt, ast.CommentStmt):
        if stmt.objtype not in _COMMENTABLE:
            return "COMMENT is allowed only on tables, columns, indexes, views, sequences and types"
        return _object_refusal(_names(stmt.object), "commented object")
    if isinstance(stmt, ast.RenameStmt) and stmt.renameType not in _RENAMABLE:
        return "only tables and columns may be renamed"
    if isinstance(stmt, ast.CreateEnumStmt | ast.AlterEnumStmt):
        return _object_refusal(_names(stmt.typeName), "type")
    return None


def _walk(node: object) -> Iterator[ast.Node]:
    """Every node of a parse tree, the root first."""
    if isinstance(node, ast.Node):
        yield node
        for slot in type(node).__slots__:
            yield from _walk(getattr(node, slot, None))
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _walk(item)


def _tree_refusals(stmt: ast.Node) -> list[tuple[int | None, str]]:
    """Why parts of the statement are refused, each with its byte offset when the parser kept one."""
    found: list[tuple[int | None, str]] = []
    nodes = list(_walk(stmt))
    ctes = {str(n.ctename) for n in nodes if isinstance(n, ast.CommonTableExpr)}
    for node in nodes:
        location = getattr(node, "location", None)
        at = location if isinstance(location, int) and location >= 0 else None
        if isinstance(node, ast.FuncCall):
            names = _names(node.funcname)
            schema = names[:-1]
            pure = bool(names) and names[-1] in _FUNCTIONS and schema in ((), ("pg_catalog",))
            if not pure:
                found.append(
                    (at, f"the function {_qualified(names)}() is not allowed in a migration: only pure"
                     " pg_catalog functions (lower, coalesce, now, date_trunc, ...) are")
                )
        elif isinstance(node, ast.RangeVar):
            if node.schemaname is None and str(node.relname) in ctes:
                continue
            names = tuple(str(n) for n in (node.schemaname, node.relname) if n)
            refusal = _object_refusal(names, "table")
            if refusal is not None:
                found.append((at, refusal))
    return found
