"""db.connect against real servers: the pinned session settings win over role, database and DSN settings."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from reconciler import db
from reconciler.errors import ConnectError
from reconciler.inspect import inspect_network

# What a hostile role or database could set, each against a pin (db.PINNED); SQL text.
HOSTILE = {
    "standard_conforming_strings": "off",
    "backslash_quote": "on",
    "search_path": "evil, pg_catalog, public",
    "DateStyle": "SQL, DMY",
    "IntervalStyle": "iso_8601",
    "TimeZone": "'Asia/Kathmandu'",
    "extra_float_digits": "-15",
    "bytea_output": "escape",
    "transform_null_equals": "on",
    "quote_all_identifiers": "on",
    "row_security": "on",
}
# SHOW's spelling of each pin.
PINNED_SHOWN = {
    "standard_conforming_strings": "on",
    "backslash_quote": "safe_encoding",
    "search_path": "pg_catalog,pg_temp",
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "transform_null_equals": "off",
    "quote_all_identifiers": "off",
    "row_security": "off",
}


def test_every_pin_is_checked_here() -> None:
    assert {name for name, _ in db.PINNED} == set(PINNED_SHOWN) == set(HOSTILE)


def _shown(conn: psycopg.Connection[Any]) -> dict[str, str]:
    return {
        name: str(conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name.lower()))).fetchone()[0])  # type: ignore[index]
        for name in PINNED_SHOWN
    }


def _set_all(conn: psycopg.Connection[Any], target: sql.Composable) -> None:
    for name, value in HOSTILE.items():
        conn.execute(
            sql.SQL("ALTER {} SET {} = {}").format(target, sql.Identifier(name.lower()), sql.SQL(value))
        )


@pytest.fixture
def role(network: Any) -> Iterator[tuple[Any, str]]:
    """A network of one node and a login role of its own (dropped afterwards)."""
    net = network(parents={"nation": None})
    name = f"hostile_{secrets.token_hex(3)}"
    admin = net.connect("nation")
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    try:
        yield net, name
    finally:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.mark.server
def test_role_settings_do_not_reach_the_session(role: tuple[Any, str]) -> None:
    net, name = role
    admin = net.connect("nation")
    _set_all(admin, sql.SQL("ROLE {}").format(sql.Identifier(name)))
    dsn = net.dsn("nation").replace("user=postgres", f"user={name}")
    with psycopg.connect(dsn) as plain:
        assert _shown(plain)["standard_conforming_strings"] == "off"  # the role's settings do apply
        assert _shown(plain)["search_path"] == "evil, pg_catalog, public"
    with db.connect(dsn, timeout=5) as conn:
        assert _shown(conn) == PINNED_SHOWN
    # Options in the DSN (an operator may allow them) come first: the pins still win.
    with db.connect(dsn + " options='-c search_path=evil -c timezone=EST5EDT'", timeout=5) as conn:
        assert _shown(conn) == PINNED_SHOWN


@pytest.mark.server
@pytest.mark.parametrize("autocommit", [True, False])
def test_pgtz_and_pgdatestyle_do_not_reach_the_session(
    network: Any, monkeypatch: pytest.MonkeyPatch, autocommit: bool
) -> None:
    """libpq sends both after `options` and the server applies them last: set again once connected."""
    net = network(parents={"nation": None})
    monkeypatch.setenv("PGTZ", "Asia/Kathmandu")
    monkeypatch.setenv("PGDATESTYLE", "SQL, DMY")
    with psycopg.connect(net.dsn("nation"), options="-c TimeZone=UTC -c DateStyle=ISO,MDY") as plain:
        assert _shown(plain)["TimeZone"] == "Asia/Kathmandu" and _shown(plain)["DateStyle"] == "SQL, DMY"
    with db.connect(net.dsn("nation"), timeout=5, autocommit=autocommit) as conn:
        conn.rollback()  # what inspection does after its batch
        assert _shown(conn) == PINNED_SHOWN


@pytest.mark.server
def test_database_settings_do_not_reach_the_session(network: Any) -> None:
    net = network(parents={"nation": None})
    admin = net.connect("nation")
    database = admin.execute("SELECT current_database()").fetchone()[0]
    _set_all(admin, sql.SQL("DATABASE {}").format(sql.Identifier(database)))
    with psycopg.connect(net.dsn("nation")) as plain:
        assert _shown(plain)["TimeZone"] == "Asia/Kathmandu"
    with db.connect(net.dsn("nation"), timeout=5) as conn:
        assert _shown(conn) == PINNED_SHOWN


@pytest.mark.server
def test_a_shadowing_function_in_the_search_path_does_not_reach_inspection(network: Any) -> None:
    """evil.set_config shadows pg_catalog's for a session on the database's search_path; not for ours."""
    net = network(parents={"nation": None})
    admin = net.connect("nation")
    database = admin.execute("SELECT current_database()").fetchone()[0]
    admin.execute("CREATE SCHEMA evil")
    admin.execute(
        "CREATE FUNCTION evil.set_config(text, text, boolean) RETURNS text LANGUAGE plpgsql"
        " AS $$BEGIN RAISE EXCEPTION 'shadowed'; END$$"
    )
    admin.execute(
        sql.SQL("ALTER DATABASE {} SET search_path = evil, pg_catalog, public").format(
            sql.Identifier(database)
        )
    )
    with psycopg.connect(net.dsn("nation")) as plain, pytest.raises(psycopg.errors.RaiseException):
        plain.execute("SELECT set_config('statement_timeout', '1000', true)")  # inspection's first statement
    result = inspect_network(net.state, nodes=["nation"])
    assert result.unreachable == {} and "nation" in result.facts


@pytest.mark.server
def test_row_security_makes_a_filtered_read_fail_instead_of_returning_fewer_rows(
    role: tuple[Any, str],
) -> None:
    net, name = role
    admin = net.connect("nation")
    admin.execute(
        "INSERT INTO public.technology (id, title, district, approved)"
        " SELECT gen_random_uuid(), 't' || i, 'd', i % 2 = 0 FROM generate_series(1, 4) AS i"
    )
    admin.execute("ALTER TABLE public.technology ENABLE ROW LEVEL SECURITY")
    admin.execute(
        sql.SQL("CREATE POLICY only_approved ON public.technology TO {} USING (approved)").format(
            sql.Identifier(name)
        )
    )
    admin.execute(sql.SQL("GRANT SELECT ON public.technology TO {}").format(sql.Identifier(name)))
    dsn = net.dsn("nation").replace("user=postgres", f"user={name}")
    with psycopg.connect(dsn) as plain:
        assert plain.execute("SELECT count(*) FROM public.technology").fetchone() == (2,)  # half, silently
    with (
        db.connect(dsn, timeout=5) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"),
    ):
        conn.execute("SELECT count(*) FROM public.technology")


@pytest.mark.server
def test_writing_sessions_fire_triggers(role: tuple[Any, str]) -> None:
    """session_replication_role = replica (a role setting) would make writes skip triggers."""
    net, name = role
    admin = net.connect("nation")
    ident = sql.Identifier(name)
    admin.execute(sql.SQL("ALTER ROLE {} SET session_replication_role = replica").format(ident))
    dsn = net.dsn("nation").replace("user=postgres", f"user={name}")
    with psycopg.connect(dsn) as plain:
        assert plain.execute("SHOW session_replication_role").fetchone() == ("replica",)
    # Reading sessions are left alone (pinning it would lock out every role that is not superuser).
    with db.connect(dsn, timeout=5) as conn:
        assert conn.execute("SHOW session_replication_role").fetchone() == ("replica",)
    # A writing session of a role that cannot set it back is refused, saying why.
    with pytest.raises(ConnectError, match="session_replication_role is 'replica'.*only a superuser"):
        db.connect(dsn, timeout=5, writes=True)
    # A superuser's writing session is set back to origin.
    admin.execute(sql.SQL("ALTER ROLE {} SUPERUSER").format(ident))
    with db.connect(dsn, timeout=5, writes=True) as conn:
        assert conn.execute("SHOW session_replication_role").fetchone() == ("origin",)
    admin.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER").format(ident))


def test_an_unparsable_dsn_is_a_connect_error_without_its_value() -> None:
    with pytest.raises(ConnectError) as info:
        db.connect("host=x password='hunter2", timeout=1)
    assert "hunter2" not in str(info.value)


def test_options_of_the_dsn_or_environment_come_before_the_pins(monkeypatch: pytest.MonkeyPatch) -> None:
    pins = db.pinned_options(None)
    assert pins.startswith("-c standard_conforming_strings=on ")
    assert db.pinned_options("-c work_mem=64MB") == f"-c work_mem=64MB {pins}"
