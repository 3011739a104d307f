"""DSN policy (dsn.py, config.py, load._check_dsns): which libpq keywords a desired state may use, offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.pq import Conninfo
from typer.testing import CliRunner

from reconciler import dsn as dsnlib
from reconciler.cli import app
from reconciler.errors import LoadError
from reconciler.load import load_desired_texts

NATION = "host=10.1.0.1 port=5432 dbname=slm user=replicator"
REGION = "host=10.2.0.1 port=5432 dbname=slm user=replicator"
SETS = """\
replication_sets:
  approved:
    tables:
      public.technology:
        row_filter: "approved"
"""


def topology(
    region_dsn: str = REGION, region_admin: str | None = None, nation_admin: str | None = None
) -> str:
    text = f"""\
version: 1
levels: [region, nation]
nodes:
  nation:
    level: nation
    dsn: {_quoted(NATION)}
"""
    if nation_admin is not None:
        text += f"    admin_dsn: {_quoted(nation_admin)}\n"
    text += f"""\
  region:
    level: region
    upstream: nation
    dsn: {_quoted(region_dsn)}
"""
    if region_admin is not None:
        text += f"    admin_dsn: {_quoted(region_admin)}\n"
    return text


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def problems(topology_text: str) -> list[str]:
    with pytest.raises(LoadError) as info:
        load_desired_texts({"topology.yaml": topology_text, "sets.yaml": SETS}, origin=".")
    return [str(p) for p in info.value.problems]


def loads(topology_text: str) -> None:
    load_desired_texts({"topology.yaml": topology_text, "sets.yaml": SETS}, origin=".")


# Each refused keyword with a value that must never be quoted back.
REFUSED = {
    "options": "options='-c hunter2=1'",
    "client_encoding": "client_encoding=hunter2",
    "passfile": "passfile=/tmp/hunter2",
    "service": "service=hunter2",
    "replication": "replication=database",
    "krbsrvname": "krbsrvname=hunter2",
    "gssdelegation": "gssdelegation=1",
    "load_balance_hosts": "load_balance_hosts=random",
    "sslkeylogfile": "sslkeylogfile=/tmp/hunter2",
    "oauth_issuer": "oauth_issuer=https://hunter2.example",
    "oauth_client_id": "oauth_client_id=hunter2",
    "oauth_scope": "oauth_scope=hunter2",
}


@pytest.mark.parametrize("keyword", sorted(REFUSED))
def test_each_refused_keyword_is_named_with_why_and_how_to_enable(keyword: str) -> None:
    found = problems(topology(f"{REGION} {REFUSED[keyword]}"))
    assert len(found) == 1, found
    message = found[0]
    assert message.startswith(f"topology.yaml:10:10: node 'region': dsn uses '{keyword}', which "), message
    assert dsnlib.GUARDED[keyword] in message
    assert f'[dsn] allow = ["{keyword}"]' in message and "RECONCILE_CONFIG" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("keyword", sorted(REFUSED))
def test_each_refused_keyword_in_admin_dsn(keyword: str) -> None:
    found = problems(topology(region_admin=f"host=10.2.0.9 dbname=slm {REFUSED[keyword]}"))
    assert [m.split(" uses ")[0] for m in found] == ["topology.yaml:11:16: node 'region': admin_dsn"], found
    assert f"'{keyword}'" in found[0] and "hunter2" not in found[0]


def test_service_is_allowed_only_in_a_dsn_the_tool_does_not_connect_with() -> None:
    # With an admin_dsn, dsn is what the servers use to reach each other: their own service file.
    loads(topology("service=region_east", region_admin="host=10.2.0.9 dbname=slm"))
    # Without one, the tool connects with dsn, with the operator's service file.
    (found,) = problems(topology("service=region_east"))
    assert (
        "node 'region': dsn uses 'service'" in found
        and "this is a DSN the tool itself connects with" in found
    )


def test_an_empty_admin_dsn_does_not_make_dsn_a_peers_only() -> None:
    # connect_dsn takes dsn when admin_dsn is empty: the policy judges dsn as the tool's own.
    (found,) = problems(topology("service=region_east host=10.9.9.9 dbname=slm", region_admin=""))
    assert "node 'region': dsn uses 'service'" in found, found


@pytest.mark.parametrize(
    "spelling",
    [
        "host=10.2.0.1 hostaddr=10.9.9.9 dbname=slm",
        "hostaddr=10.9.9.9 dbname=slm",  # no host: PGHOST of the operator's environment would name it
        "host=db.example.org hostaddr=10.2.0.1 dbname=slm",
        "host=10.2.0.1,10.2.0.2 hostaddr=10.2.0.1,10.9.9.9 dbname=slm",
    ],
)
def test_hostaddr_differing_from_host_is_refused(spelling: str) -> None:
    found = problems(topology(spelling))
    assert len(found) == 1, found
    assert "uses 'hostaddr', which differs from host" in found[0] or "uses 'multiple_hosts'" in found[0]
    assert "10.9.9.9" not in found[0]


@pytest.mark.parametrize(
    "spelling", ["host=10.2.0.1 hostaddr=10.2.0.1 dbname=slm", "host=::1 hostaddr=0:0::1 dbname=slm"]
)
def test_hostaddr_equal_to_host_is_allowed(spelling: str) -> None:
    loads(topology(spelling))


@pytest.mark.parametrize(
    "spelling",
    [
        "host=10.2.0.1,10.9.9.9 dbname=slm",
        "host=10.2.0.1 port=5432,5433 dbname=slm",
        "postgresql://10.2.0.1,10.9.9.9/slm",
    ],
)
def test_several_hosts_are_refused(spelling: str) -> None:
    (found,) = problems(topology(spelling))
    assert "node 'region': dsn uses 'multiple_hosts', which lists several hosts or ports" in found
    assert "10.9.9.9" not in found


@pytest.mark.parametrize("secret", ["password", "sslpassword", "oauth_client_secret", "scram_client_key"])
def test_secrets_are_refused_and_never_quoted(secret: str) -> None:
    (found,) = problems(topology(f"{REGION} {secret}=hunter2"))
    assert f"node 'region': dsn contains a {secret}; secrets never live in git" in found
    assert "hunter2" not in found


def test_an_unparsable_dsn_is_not_quoted() -> None:
    # libpq's own message would quote the token after the quote: part of a password.
    (found,) = problems(topology("host=10.2.0.1 dbname=slm user=x secret'hunter2"))
    assert "node 'region': dsn is not a valid connection string: libpq cannot parse it" in found
    assert "hunter2" not in found and "secret" not in found.split("it may hold")[0]


def test_allowed_keywords_load() -> None:
    loads(
        topology(
            f"{REGION} sslmode=verify-full sslrootcert=/etc/ssl/ca.pem sslcert=c.pem sslkey=k.pem sslsni=1 "
            "channel_binding=require require_auth=scram-sha-256 gssencmode=disable connect_timeout=5 "
            "keepalives=1 keepalives_idle=30 tcp_user_timeout=1000 application_name=x target_session_attrs=any"
        )
    )


def test_every_libpq_keyword_is_decided() -> None:
    """A newer libpq's keyword is refused as unknown until this table decides it; this lists them."""
    known = {option.keyword.decode() for option in Conninfo.get_defaults()}
    decided = dsnlib.ALLOWED | set(dsnlib.SECRETS) | set(dsnlib.GUARDED)
    assert known - decided == set()


# -- the operator's configuration ----------------------------------------------------------------


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "operator.toml"
    path.write_text(text)
    monkeypatch.setenv("RECONCILE_CONFIG", str(path))
    return path


def test_operator_config_enables_a_keyword(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = topology(f"{REGION} options='-c work_mem=64MB'")
    assert problems(options)
    _config(tmp_path, monkeypatch, '[dsn]\nallow = ["options"]\n')
    loads(options)
    # Only what it names: the rest stays refused.
    (found,) = problems(topology(f"{REGION} passfile=/tmp/p"))
    assert "uses 'passfile'" in found


def test_operator_config_enables_hostaddr_and_several_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path, monkeypatch, '[dsn]\nallow = ["hostaddr", "multiple_hosts"]\n')
    loads(topology("host=db.example.org hostaddr=10.2.0.1 dbname=slm"))
    loads(topology("host=10.2.0.1,10.2.0.2 dbname=slm"))


def test_default_config_path_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILE_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "reconcile").mkdir()
    (tmp_path / "reconcile" / "config.toml").write_text('[dsn]\nallow = ["service"]\n')
    loads(topology("service=region"))


def test_config_in_the_desired_state_directory_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge request cannot bring its own permission: the file is never looked for there."""
    monkeypatch.delenv("RECONCILE_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    desired = tmp_path / "desired-state"
    desired.mkdir()
    (desired / "topology.yaml").write_text(topology(f"{REGION} options='-c x=1'"))
    (desired / "sets.yaml").write_text(SETS)
    for name in ("config.toml", "reconcile.toml", ".reconcile.toml"):
        (desired / name).write_text('[dsn]\nallow = ["options"]\n')
    (desired / "reconcile").mkdir()
    (desired / "reconcile" / "config.toml").write_text('[dsn]\nallow = ["options"]\n')
    result = CliRunner().invoke(app, ["validate", "-d", str(desired)])
    assert result.exit_code == 1, result.output
    assert "node 'region': dsn uses 'options'" in result.output


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ('[dsn]\nallow = ["password"]\n', ":2:10:", "'password' is a secret"),
        ('[dsn]\nallow = ["host"]\n', ":2:10:", "'host' is always allowed"),
        ('[dsn]\nallow = ["optoins"]\n', ":2:10:", "'optoins' is not a libpq keyword"),
        ('[dsn]\nallow = "options"\n', ":2:1:", "dsn.allow must be a list of strings"),
        ("[dsn]\nalow = []\n", ":2:1:", "unknown key 'alow' in [dsn]"),
        ("[dns]\n", ":1:2:", "unknown table or key 'dns'"),
        ('[connect]\nuser = "a b"\n', ":2:1:", "connect.user must be a role name"),
        ("[connect]\nuser = 7\n", ":2:1:", "connect.user must be a role name"),
        ("[connect]\nrole = 'x'\n", ":2:1:", "unknown key 'role' in [connect]"),
        ("[dsn\n", ":1:", "not valid TOML"),
    ],
)
def test_a_wrong_operator_config_is_an_error_naming_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, where: str, words: str
) -> None:
    path = _config(tmp_path, monkeypatch, text)
    (found,) = problems(topology())
    assert found.startswith(f"{path}{where}"), found
    assert words in found


def test_a_named_config_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILE_CONFIG", str(tmp_path / "missing.toml"))
    (found,) = problems(topology())
    assert (
        found
        == f"{tmp_path / 'missing.toml'}:1:1: the operator configuration named by $RECONCILE_CONFIG does not exist"
    )


# -- admin_dsn reaches a database of its own ---------------------------------------------------------------


def test_admin_dsn_reaching_another_nodes_database_names_both() -> None:
    (found,) = problems(topology(region_admin="postgresql://admin@10.1.0.1:5432/slm"))
    assert found.startswith(
        "topology.yaml:11:16: node 'region': admin_dsn reaches the same database as the dsn of node 'nation'"
    )


def test_two_admin_dsns_reaching_one_database_name_both() -> None:
    admin = "host=10.5.0.1 dbname=slm"
    (found,) = problems(topology(region_admin=admin, nation_admin=admin))
    assert "node 'region': admin_dsn reaches the same database as the admin_dsn of node 'nation'" in found


def test_admin_dsn_of_the_nodes_own_database_is_fine() -> None:
    loads(topology(region_admin="host=10.2.0.1 port=5432 dbname=slm user=admin"))
