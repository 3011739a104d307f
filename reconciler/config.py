"""The operator's own configuration: a TOML file outside the desired state (e.g. DSN keywords to allow).

The desired state comes from merge requests and is untrusted; what it may
ask of the tool's connections is decided here, by whoever runs the tool.
The file is $RECONCILE_CONFIG (set empty: no file), else
$XDG_CONFIG_HOME/reconcile/config.toml, else ~/.config/reconcile/config.toml.
It is never looked for in the desired-state directory or in a git revision.
A missing default file means the defaults; a named one must exist.

    [dsn]
    allow = ["service", "options"]   # keywords dsn.py refuses by default

    [connect]
    user = "reconcile_review"        # log in as this role, whatever the DSNs say

    [app]
    ca_file = "/etc/ssl/certs/site-ca.pem"   # trust only this CA for https app_url probes

`connect.user` is for jobs that must not hold the admin role's secret:
`review` on merge requests logs in as the read-only role of
deploy/roles/reconcile-review.sql, with that role's password only.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from reconciler import dsn as dsnlib
from reconciler.errors import LoadError, Location, Problem

ENV = "RECONCILE_CONFIG"
WHERE = "$RECONCILE_CONFIG, else ~/.config/reconcile/config.toml"
_ROLE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True)
class OperatorConfig:
    """What the operator decided; `path` is None when no file was read."""

    path: Path | None = None
    dsn_allow: frozenset[str] = frozenset()
    connect_user: str | None = None  # every connection logs in as this role (None: as the DSN says)
    app_ca_file: Path | None = None  # CA certificates for https app_url probes (None: the system's)


def config_path() -> tuple[Path | None, bool]:
    """(the file to read, whether it was named explicitly); (None, True) when turned off."""
    explicit = os.environ.get(ENV)
    if explicit is not None:
        return (Path(explicit) if explicit else None), True
    base = os.environ.get("XDG_CONFIG_HOME")
    if not base:
        try:
            base = str(Path.home() / ".config")
        except RuntimeError:
            return None, False  # no home directory (a service user): defaults
    return Path(base) / "reconcile" / "config.toml", False


def load_operator_config() -> OperatorConfig:
    """Read the operator's file; LoadError naming file:line:column when it is wrong."""
    path, explicit = config_path()
    if path is None:
        return OperatorConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise _error(path, 1, 1, f"the operator configuration named by ${ENV} does not exist") from None
        return OperatorConfig()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable UTF-8 text"
        raise _error(path, 1, 1, f"cannot read the operator configuration: {reason}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION.search(str(exc))
        line, column = (int(found.group(1)), int(found.group(2))) if found else (1, 1)
        message = _TOML_POSITION.sub("", str(exc)).strip()
        raise _error(path, line, column, f"not valid TOML: {message}") from None
    for key in data:
        if key not in ("dsn", "connect", "app"):
            message = f"unknown table or key '{key}' (known: [dsn], [connect], [app])"
            raise _error(path, *_position(text, key), message)
    return OperatorConfig(
        path=path,
        dsn_allow=_dsn_allow(path, text, data),
        connect_user=_connect_user(path, text, data),
        app_ca_file=_app_ca_file(path, text, data),
    )


def _app_ca_file(path: Path, text: str, data: dict[str, object]) -> Path | None:
    section = data.get("app", {})
    if not isinstance(section, dict):
        raise _error(path, *_position(text, "app"), "app must be a table: [app]")
    for key in section:
        if key != "ca_file":
            raise _error(path, *_position(text, key), f"unknown key '{key}' in [app] (known: ca_file)")
    ca_file = section.get("ca_file")
    if ca_file is None:
        return None
    if not isinstance(ca_file, str) or not ca_file:
        raise _error(path, *_position(text, "ca_file"), 'app.ca_file must be a path: ca_file = "/etc/ca.pem"')
    found = Path(ca_file)
    if not found.is_file():
        raise _error(path, *_position(text, "ca_file"), f"app.ca_file: {ca_file} is not a readable file")
    return found


def _connect_user(path: Path, text: str, data: dict[str, object]) -> str | None:
    section = data.get("connect", {})
    if not isinstance(section, dict):
        raise _error(path, *_position(text, "connect"), "connect must be a table: [connect]")
    for key in section:
        if key != "user":
            raise _error(path, *_position(text, key), f"unknown key '{key}' in [connect] (known: user)")
    user = section.get("user")
    if user is None:
        return None
    if not isinstance(user, str) or not _ROLE.fullmatch(user):
        message = (
            "connect.user must be a role name (letters, digits, _ and $, at most 63 characters):"
            ' user = "reconcile_review"'
        )
        raise _error(path, *_position(text, "user"), message)
    return user


def _dsn_allow(path: Path, text: str, data: dict[str, object]) -> frozenset[str]:
    section = data.get("dsn", {})
    if not isinstance(section, dict):
        raise _error(path, *_position(text, "dsn"), "dsn must be a table: [dsn]")
    for key in section:
        if key != "allow":
            raise _error(path, *_position(text, key), f"unknown key '{key}' in [dsn] (known: allow)")
    allow = section.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(entry, str) for entry in allow):
        message = 'dsn.allow must be a list of strings: allow = ["service"]'
        raise _error(path, *_position(text, "allow"), message)
    for entry in allow:
        problem = dsnlib.cannot_allow(entry)
        if problem is not None:
            raise _error(path, *_position(text, f'"{entry}"'), f"dsn.allow: '{entry}' {problem}")
    return frozenset(allow)


def _position(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of the first occurrence of `needle`, else 1:1."""
    for number, line in enumerate(text.splitlines(), start=1):
        column = line.find(needle)
        if column != -1:
            return number, column + 1
    return 1, 1


def _error(path: Path, line: int, column: int, message: str) -> LoadError:
    return LoadError([Problem(Location(str(path), line, column), message)])
