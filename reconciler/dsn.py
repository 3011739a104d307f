"""libpq connection strings: parsing, the server they point at, the keywords a desired state may use."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import Conninfo

DEFAULT_PORT = 5432


class DsnError(ValueError):
    """The string is not a libpq connection string or URI."""


@dataclass(frozen=True, order=True)
class ServerAddress:
    """Which PostgreSQL server a DSN points at (one server = one host and port)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse(dsn: str) -> dict[str, str]:
    """Keyword form of a DSN or URI, as libpq itself parses it.

    Refused before libpq sees it: a control character. libpq reads a C
    string, so everything after a NUL is silently dropped ("host=h\\0password=x"
    parses as "host=h"), and what it reads would no longer be what the text
    says; other control characters have no place in a DSN and hide what a
    terminal shows. The message never quotes the DSN: libpq's own quotes the
    offending token, which may be part of a password ("unexpected spaces
    found in ..."), so it is not passed on.
    """
    bad = _CONTROL.search(dsn)
    if bad is not None:
        character = f"U+{ord(bad.group()):04X}"
        raise DsnError(f"it holds the control character {character} at character {bad.start() + 1}")
    try:
        parsed = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise DsnError("libpq cannot parse it") from exc
    return {k: str(v) for k, v in parsed.items() if v is not None}


# C0 and C1 controls, DEL, and lone surrogates (which cannot even be encoded to reach libpq).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def is_local_host(host: str | None) -> bool:
    """This machine: no host (a Unix socket), a socket directory, localhost, 127.0.0.0/8 or ::1."""
    if host is None or host == "" or host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_address(params: dict[str, str]) -> ServerAddress:
    """The server a parsed DSN reaches; every loopback spelling counts as one host.

    Without a host, libpq uses a Unix socket on this machine: also local.
    """
    host = params.get("hostaddr") or params.get("host") or ""
    host = host.split(",")[0].strip().lower()
    if is_local_host(host):
        host = "localhost"
    port_text = params.get("port", "").split(",")[0].strip()
    port = int(port_text) if port_text.isdigit() else DEFAULT_PORT
    return ServerAddress(host=host, port=port)


def database_key(params: dict[str, str]) -> tuple[ServerAddress, str]:
    """(server, database name): two DSNs with the same key reach the same database."""
    return server_address(params), params.get("dbname", params.get("user", ""))


# -- which libpq keywords a DSN of the desired state may use -------------------------
#
# The desired state arrives in merge requests: a DSN in it is untrusted. The
# tool connects with the operator's secrets (~/.pgpass, PGPASSWORD, client
# certificates), and the servers connect to each other with theirs. A DSN may
# say where the server is, who logs in and how carefully (TLS, GSSAPI,
# timeouts), and nothing else. Each of libpq's keywords is decided here
# (libpq 18, "Parameter Key Words"); a keyword this list does not know is
# refused too, until a version of the tool decides it.

ALLOWED = frozenset(
    {
        # where and who
        "host", "port", "dbname", "user",
        "hostaddr",  # only with a host equal to it (see refusals)
        # timing and names: the tool sets its own for its sessions
        "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "application_name", "fallback_application_name",
        # how carefully: TLS and GSSAPI encryption, what authentication to accept
        "sslmode", "sslnegotiation", "sslcompression", "sslcert", "sslkey", "sslcertmode",
        "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "ssl_min_protocol_version",
        "ssl_max_protocol_version", "gssencmode", "gsslib", "channel_binding", "require_auth",
        "requirepeer", "min_protocol_version", "max_protocol_version",
        # with one host, only a check on the server found there
        "target_session_attrs",
    }
)  # fmt: skip

# Secrets never live in git, and no configuration changes that.
SECRETS = ("password", "sslpassword", "oauth_client_secret", "scram_client_key", "scram_server_key")

# Refused unless the operator allows them (config.py); why, for the message.
# `hostaddr` and `multiple_hosts` name uses of allowed keywords.
GUARDED: dict[str, str] = {
    "options": "sets server settings for the session (they can change how the server reads the SQL "
    "sent to it)",
    "client_encoding": "changes how the server reads the bytes sent to it",
    "passfile": "chooses the file libpq takes passwords from",
    "service": "takes connection settings, passwords included, from a service file, while the DSN's "
    "own host and port decide where they are sent; this is a DSN the tool itself connects with",
    "replication": "turns the session into a replication (walsender) session",
    "krbsrvname": "chooses which Kerberos service's ticket libpq presents to the server",
    "gssdelegation": "forwards the Kerberos credentials of whoever connects to the server",
    "load_balance_hosts": "lets libpq pick one of several hosts at random",
    "sslkeylogfile": "writes the TLS session keys to a file",
    "oauth_issuer": "sends the login through an OAuth issuer the DSN chooses",
    "oauth_client_id": "sends the login through an OAuth client the DSN chooses",
    "oauth_scope": "chooses what an OAuth login asks for",
    "hostaddr": "differs from host: libpq connects to hostaddr but looks the password up (~/.pgpass) and "
    "checks the certificate for host, so a password meant for one server goes to another",
    "multiple_hosts": "lists several hosts or ports: libpq may reach another server than the first, "
    "which every offline check (one database per node, one level per server) judges the DSN by",
}
UNKNOWN_REASON = "is not a keyword this tool knows to be harmless in a desired state"
_LISTS = ("host", "hostaddr", "port")


@dataclass(frozen=True)
class Refusal:
    """A keyword (or use of one) a DSN may not have, and why."""

    keyword: str
    reason: str


def refusals(params: dict[str, str], *, admin: bool, allowed: frozenset[str]) -> list[Refusal]:
    """What the parsed DSN uses that the policy refuses (secrets are the loader's own rule).

    `admin`: the tool itself connects with this DSN (admin_dsn, or dsn when
    there is none); `allowed`: what the operator enabled.
    """
    found: list[Refusal] = []
    for keyword in sorted(params):
        if keyword in SECRETS or keyword in ALLOWED or keyword in allowed:
            continue
        if keyword == "service" and not admin:
            continue  # the peers' DSN: the service file of the server that connects
        found.append(Refusal(keyword, GUARDED.get(keyword, UNKNOWN_REASON)))
    if "multiple_hosts" not in allowed and any("," in params.get(k, "") for k in _LISTS):
        found.append(Refusal("multiple_hosts", GUARDED["multiple_hosts"]))
    elif "hostaddr" in params and "hostaddr" not in allowed and not _same_address(params):
        found.append(Refusal("hostaddr", GUARDED["hostaddr"]))
    return found


def _same_address(params: dict[str, str]) -> bool:
    """hostaddr names exactly the hosts of `host` (as IP addresses), one for one.

    Without a host, libpq would take the host for the password lookup from
    PGHOST, the operator's environment: that counts as differing.
    """
    hosts = [h.strip() for h in params.get("host", "").split(",")]
    addresses = [a.strip() for a in params["hostaddr"].split(",")]
    if len(hosts) != len(addresses):
        return False
    for host, address in zip(hosts, addresses, strict=True):
        try:
            if ipaddress.ip_address(host) != ipaddress.ip_address(address):
                return False
        except ValueError:
            return False
    return True


def cannot_allow(entry: str) -> str | None:
    """Why the operator's configuration cannot allow `entry`, or None when it can."""
    if entry in SECRETS:
        return "is a secret: secrets never live in git, whatever the configuration says"
    if entry in ALLOWED and entry != "hostaddr":
        return "is always allowed: nothing to enable"
    if entry in GUARDED or entry in _libpq_keywords():
        return None
    return "is not a libpq keyword (nor multiple_hosts)"


def _libpq_keywords() -> frozenset[str]:
    return frozenset(option.keyword.decode() for option in Conninfo.get_defaults())
