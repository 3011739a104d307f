"""Secrets in DSNs: libpq's own parse decides what the loader refuses; redact and scrub never print a secret."""

from __future__ import annotations

import json
import string
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from reconciler import dsn as dsnlib
from reconciler.errors import LoadError
from reconciler.load import load_desired_texts
from reconciler.secrets import SECRET_KEYWORDS, redact, redact_text, scrub

TOPOLOGY = """\
version: 1
levels: [district, region]
nodes:
  region:
    level: region
    dsn: "host=10.0.0.1 dbname=slm user=replicator"
  district_a:
    level: district
    upstream: region
    dsn: DSN
replication_sets:
  approved:
    tables:
      public.technology: {row_filter: approved}
"""


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://h/db?pass%77ord=Leak1", "postgresql://h/db"),
        ("postgresql://h/db?%70assword=Leak1&sslmode=require", "postgresql://h/db?sslmode=require"),
        ("postgresql://h/db?PASS%57ORD=Leak1", "postgresql://h/db"),
        ("postgresql://h/db?sslmode=require&ssl%70assword=Leak1", "postgresql://h/db?sslmode=require"),
        ("postgresql://h/db?password=a#Leak1&x=1", "postgresql://h/db?x=1"),  # '#' is part of libpq's value
        ("postgresql://u:Leak1?x@h/db", "postgresql://u@h/db"),  # libpq: the password is "Leak1?x"
        ("postgresql://us%40er:pa%3ALeak1@h/db", "postgresql://us%40er@h/db"),
        ("host=h password='a Leak1' dbname=d", "host=h dbname=d"),
        ("host=h password=Esc\\ Leak1 dbname=d", "host=h dbname=d"),
        ("host=h password = 'it\\'s Leak1' dbname=d", "host=h dbname=d"),
        ("host=h\tpassword\t=\tLeak1", "host=h"),
        ("host=h\x00password=Leak1", "host=h\x00"),
        ("host=h pass\x00word=Leak1", "host=h"),  # shown as "password" by a terminal
        ("host=h sslpassword=Leak1", "host=h"),
        ("host=h PASSWORD=Leak1", "host=h"),
        ("host=h scram_client_key=Leak1", "host=h"),
        ("host=h password='Leak1", "host=h"),  # unterminated: the rest is dropped
    ],
)
def test_redact(dsn: str, shown: str) -> None:
    assert redact(dsn) == shown
    assert "Leak1" not in scrub(f"could not connect: {dsn} (timeout)")


def test_redact_keeps_what_is_not_a_secret() -> None:
    dsn = "postgresql://h:5432/db?user=admin@server&application_name=app"  # '@' in a query value
    assert redact(dsn) == dsn
    assert redact("host=a user=password dbname=mypassword") == "host=a user=password dbname=mypassword"


def test_scrub_masks_what_libpq_reads_even_after_a_nul() -> None:
    dsn = "host=h password=Known1\x00 junk"
    assert scrub("FATAL: bad password Known1", dsn) == "FATAL: bad password ***"


def test_redact_text_is_linear_on_hostile_text() -> None:
    for text in ("postgresql://" * 100_000, "password" + " " * 1_000_000, "postgresql://u:" + "@" * 500_000):
        started = time.monotonic()
        redact_text(text)
        redact(text)
        assert time.monotonic() - started < 2


@pytest.mark.parametrize("dsn", ["host=h\x00password=x", "host=h\x01 dbname=d", "host=h dbname=\ud800", "x\x9b"])
def test_parse_refuses_control_characters(dsn: str) -> None:
    with pytest.raises(dsnlib.DsnError, match="control character"):
        dsnlib.parse(dsn)


@pytest.mark.parametrize(
    "dsn",
    ["postgresql://u:Secret Space@h/db", "postgresql://h/db?password=Secret%00x", "host=h 'Secret", "host=h Secret"],
)
def test_parse_errors_quote_nothing(dsn: str) -> None:
    with pytest.raises(dsnlib.DsnError) as info:
        dsnlib.parse(dsn)
    assert "Secret" not in str(info.value)


# -- every spelling: refused by the loader or password-free for libpq; never printed -----------

TOKEN = st.text(string.ascii_letters + string.digits, min_size=8, max_size=12).map(lambda t: f"Tk{t}")
HIDDEN = st.sampled_from(["", "", "", "", "\x00", "\x01", "\x1b", "\x7f"])


@st.composite
def spelled(draw: st.DrawFn, uri: bool) -> str:
    """A secret keyword in any case, letters percent-encoded, control characters between them."""
    word = draw(st.sampled_from(["password", "sslpassword", "password", *SECRET_KEYWORDS]))
    letters = []
    for ch in word:
        forms = [ch.lower(), ch.upper(), f"%{ord(ch.lower()):02x}", f"%{ord(ch.upper()):02X}"]
        letters.append(draw(st.sampled_from(forms if uri or draw(st.booleans()) else [ch])))
        letters.append(draw(HIDDEN))
    return "".join(letters)


@st.composite
def keyword_dsn(draw: st.DrawFn, token: str) -> str:
    value = draw(
        st.sampled_from(
            [token, f"Esc\\ {token}", f"'a {token} b'", f"'it\\'s {token}'", f"'{token}", f"{token}\\",
             f"'x\\\\{token}'", f"{token}'x"]
        )
    )  # fmt: skip
    spaces = st.sampled_from(["", " ", "  ", "\t", " \n "])
    secret = f"{draw(spelled(uri=False))}{draw(spaces)}={draw(spaces)}{value}"
    if draw(st.integers(0, 5)) == 0:
        secret = f"application_name='x {secret}'"  # inside another value: libpq reads no password
    parts = ["host=10.0.0.2", "dbname=slm", "user=replicator"]
    parts.insert(draw(st.integers(0, len(parts))), secret)
    separators = st.sampled_from([" ", " ", "  ", "\t", "\x00", " \x00", "\x01"])
    return parts[0] + "".join(draw(separators) + p for p in parts[1:])


@st.composite
def uri_dsn(draw: st.DrawFn, token: str) -> str:
    scheme = draw(st.sampled_from(["postgresql://", "postgres://", "POSTGRESQL://"]))
    if draw(st.booleans()):
        password = draw(st.sampled_from([token, f"{token}%40x", f"a?{token}", f"a%3A{token}", f"{token}#x"]))
        user = draw(st.sampled_from(["replicator", "rep%40licator", ""]))
        return f"{scheme}{user}:{password}@10.0.0.2:5432/slm?sslmode=disable"
    value = draw(st.sampled_from([token, f"{token}#frag", f"a%20{token}", f"{token}\x00"]))
    before = draw(st.sampled_from(["", "sslmode=disable&"]))
    after = draw(st.sampled_from(["", "&application_name=x"]))
    return f"{scheme}replicator@10.0.0.2/slm?{before}{draw(spelled(uri=True))}={value}{after}"


@st.composite
def secret_dsn(draw: st.DrawFn) -> tuple[str, str]:
    token = draw(TOKEN)
    dsn = draw(keyword_dsn(token) if draw(st.booleans()) else uri_dsn(token))
    return token, dsn


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=secret_dsn())
def test_no_spelling_of_a_secret_passes_or_prints(case: tuple[str, str]) -> None:
    token, dsn = case
    text = TOPOLOGY.replace("DSN", json.dumps(dsn))  # a JSON string is a YAML double-quoted scalar
    try:
        state = load_desired_texts({"ds/topology.yaml": text}, origin="ds")
    except LoadError as exc:
        assert token not in str(exc), str(exc)
    else:
        loaded = state.nodes["district_a"].dsn
        libpq = conninfo_to_dict(loaded)  # libpq's own parser, of exactly what was loaded
        assert not any(k in libpq for k in SECRET_KEYWORDS), (dsn, libpq)
    for shown in (redact(dsn), redact_text(f"failed: {dsn} (retrying)"), scrub(f"failed: {dsn}", dsn)):
        assert token not in shown, (dsn, shown)
