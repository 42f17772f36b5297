"""flux.connections: URIs, storage with secrets encrypted at rest, FLUX_CONN_ variables, rotation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from flux import crypto
from flux.config import get_config
from flux.connections import (
    ConnectionInfo,
    add_connection,
    clear_secrets,
    delete_connection,
    get_connection,
    known_secrets,
    list_connections,
    register_secret,
    rotate_fernet_key,
    secrets_of,
    switch_fernet_key,
)
from flux.db import get_engine, is_sqlite
from flux.exceptions import (
    ConnectionExists,
    ConnectionNotFound,
    FernetKeyError,
    InvalidConnection,
    InvalidConnectionURI,
)
from flux.hooks.base import BaseHook

PASSWORD = "Pl41n-T3xt-P@ss/word"
API_KEY = "AKIA-very-secret-api-key-1234"


def _secretive(conn_id: str = "warehouse") -> ConnectionInfo:
    return ConnectionInfo(
        conn_id=conn_id, conn_type="mysql", host="db.example.com", port=3306, login="etl",
        password=PASSWORD, schema="sales",
        extra={"charset": "utf8mb4", "api_key": API_KEY, "nested": {"client_secret": "n3sted-s3cret"}},
        description="the warehouse",
    )


# --- URIs -------------------------------------------------------------------------------------------


def test_from_uri_reads_every_part() -> None:
    info = ConnectionInfo.from_uri("m", "mysql://user:pa%40ss@host:3306/db?charset=utf8mb4&local_infile=1")
    assert (info.conn_type, info.host, info.port, info.login, info.password, info.schema) == (
        "mysql", "host", 3306, "user", "pa@ss", "db",
    )
    assert info.extra == {"charset": "utf8mb4", "local_infile": "1"}
    assert info.extra_dejson == info.extra and info.extra_dejson is not info.extra


@pytest.mark.parametrize(
    ("scheme", "conn_type"),
    [("postgres", "postgres"), ("postgresql", "postgres"), ("postgresql+psycopg", "postgres"),
     ("mysql", "mysql"), ("mysql+pymysql", "mysql"), ("MySQL", "mysql"),
     ("google-cloud-platform", "google_cloud_platform"), ("google_cloud_platform", "google_cloud_platform")],
)
def test_scheme_is_normalised(scheme: str, conn_type: str) -> None:
    assert ConnectionInfo.from_uri("c", f"{scheme}://h/db").conn_type == conn_type


def test_uri_round_trip_with_special_characters() -> None:
    info = ConnectionInfo(
        conn_id="c", conn_type="google_cloud", host="h.example", port=5432, login="us@r",
        password="p:a/s?s#w@rd %&=", schema="my db", extra={"a": "1 & 2", "b": "é"},
    )
    uri = info.get_uri()
    assert uri.startswith("google-cloud://us%40r:p%3Aa%2Fs%3Fs%23w%40rd%20%25%26%3D@h.example:5432/")
    assert ConnectionInfo.from_uri("c", uri) == info


def test_uri_round_trip_of_typed_and_nested_extra() -> None:
    extra = {"timeout": 3, "opts": {"x": [1, 2]}}
    info = ConnectionInfo(conn_id="c", conn_type="http", host="api", extra=extra)
    back = ConnectionInfo.from_uri("c", info.get_uri())
    assert back.extra == {"timeout": 3, "opts": {"x": [1, 2]}}


def test_ipv6_host_and_sqlite_style_path() -> None:
    info = ConnectionInfo.from_uri("c", "postgres://u@[::1]:5433/db")
    assert (info.host, info.port) == ("::1", 5433)
    assert ConnectionInfo.from_uri("c", info.get_uri()) == info
    lite = ConnectionInfo.from_uri("s", "sqlite:////var/data/x.db")
    assert lite.host is None and lite.schema == "/var/data/x.db"


def test_password_without_login() -> None:
    info = ConnectionInfo.from_uri("r", "redis://:s3cret@localhost:6379/0")
    assert info.login is None and info.password == "s3cret" and info.schema == "0"


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("localhost:3306", "no TYPE:// scheme"),
        ("my sql://h", "scheme 'my sql' is not valid"),
        ("mysql://u:p@h:port/db", "port 'port' is not a number"),
        ("mysql://u:p@h:70000/db", "port '70000' is not a number in 0..65535"),
        ("mysql://u:p@h/db?charset", "KEY=VALUE pairs"),
        ("mysql://u:p@h/db#frag", "contains '#'"),
        ("mysql://u:p@h a/db", "whitespace"),
        ("postgres://[::1:5432/db", "IPv6"),
        ("http://h?__extra__=%7Bnope", "__extra__ is not valid JSON"),
        ("http://h?__extra__=%5B1%5D", "__extra__ must be a JSON object"),
    ],
)
def test_malformed_uri_names_the_problem(uri: str, problem: str) -> None:
    with pytest.raises(InvalidConnectionURI, match=problem.replace("?", r"\?")):
        ConnectionInfo.from_uri("c", uri)


def test_uri_errors_never_show_the_password() -> None:
    with pytest.raises(InvalidConnectionURI) as info:
        ConnectionInfo.from_uri("c", "mysql://user:hunter2@h:bad/db")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


def test_repr_and_masked_views_hide_secrets() -> None:
    info = _secretive()
    shown = repr(info) + str(info) + info.masked_uri() + json.dumps(info.to_dict())
    for secret in (PASSWORD, API_KEY, "n3sted-s3cret"):
        assert secret not in shown
    masked = {"charset": "utf8mb4", "api_key": "***", "nested": {"client_secret": "***"}}
    assert info.to_dict()["extra"] == masked
    assert info.to_dict(mask=False)["password"] == PASSWORD


# --- storage ----------------------------------------------------------------------------------------


def test_add_get_list_delete() -> None:
    add_connection(_secretive("b"))
    add_connection(ConnectionInfo(conn_id="a", conn_type="postgres", host="pg"))
    got = get_connection("b")
    assert got == _secretive("b")
    assert got.source == "db"
    assert [c.conn_id for c in list_connections()] == ["a", "b"]
    delete_connection("a")
    assert [c.conn_id for c in list_connections()] == ["b"]
    with pytest.raises(ConnectionNotFound):
        get_connection("a")


def test_add_existing_needs_replace() -> None:
    add_connection(_secretive())
    changed = _secretive()
    changed.host = "other.example.com"
    with pytest.raises(ConnectionExists, match="already exists"):
        add_connection(changed)
    assert get_connection("warehouse").host == "db.example.com"
    add_connection(changed, replace=True)
    assert get_connection("warehouse").host == "other.example.com"
    assert len(list_connections()) == 1


def test_unknown_connection_message() -> None:
    with pytest.raises(ConnectionNotFound) as info:
        get_connection("x")
    assert str(info.value) == "connection 'x' not found; add it with: flux connections add x --uri ..."
    with pytest.raises(ConnectionNotFound, match="'x' not found"):
        delete_connection("x")


@pytest.mark.parametrize(
    ("info", "problem"),
    [
        (ConnectionInfo(conn_id="", conn_type="mysql"), "non-empty conn_id"),
        (ConnectionInfo(conn_id=" x", conn_type="mysql"), "surrounding spaces"),
        (ConnectionInfo(conn_id="x" * 251, conn_type="mysql"), "at most 250"),
        (ConnectionInfo(conn_id="x", conn_type=""), "needs a conn_type"),
        (ConnectionInfo(conn_id="x", conn_type="mysql", port=99999), "not in 0..65535"),
        (ConnectionInfo(conn_id="x", conn_type="mysql", extra=[1]), "must be a JSON object"),  # type: ignore[arg-type]
        (ConnectionInfo(conn_id="x", conn_type="mysql", extra={"a": object()}), "not JSON-serializable"),
    ],
)
def test_invalid_fields_are_refused_and_nothing_is_stored(info: ConnectionInfo, problem: str) -> None:
    with pytest.raises(InvalidConnection, match=problem):
        add_connection(info)
    assert list_connections() == []


def test_port_given_as_text() -> None:
    assert ConnectionInfo(conn_id="x", conn_type="mysql", port="3307").port == 3307  # type: ignore[arg-type]
    with pytest.raises(InvalidConnection, match="port 'abc'"):
        ConnectionInfo(conn_id="x", conn_type="mysql", port="abc")  # type: ignore[arg-type]


def _raw_rows() -> list[tuple[object, ...]]:
    with get_engine().connect() as conn:
        return list(conn.execute(text(
            "SELECT conn_id, password, extra, is_encrypted, is_extra_encrypted FROM connection"
        )))


def test_raw_rows_hold_no_plaintext_secret() -> None:
    add_connection(_secretive())
    [(conn_id, password, extra, is_encrypted, is_extra_encrypted)] = _raw_rows()
    assert conn_id == "warehouse"
    assert is_encrypted and is_extra_encrypted
    raw = f"{password}{extra}"
    for secret in (PASSWORD, API_KEY, "n3sted-s3cret"):
        assert secret not in raw
    stored_extra = json.loads(extra)
    assert stored_extra["charset"] == "utf8mb4"  # non-secret settings stay readable
    assert set(stored_extra["api_key"]) == {"$fernet"}


@pytest.mark.skipif(
    os.environ.get("FLUX_TEST_DATABASE", "sqlite") != "sqlite", reason="reads the SQLite file"
)
def test_raw_database_file_holds_no_plaintext_secret(flux_env: Path) -> None:
    assert is_sqlite()
    marker = "findable-non-secret-marker"
    info = _secretive()
    info.extra["marker"] = marker
    add_connection(info)
    get_engine().dispose()  # checkpoint and close, so every byte is in the files
    raw = b"".join(path.read_bytes() for path in flux_env.glob("flux.db*"))
    assert marker.encode() in raw  # proves we are looking at the right bytes
    for secret in (PASSWORD, API_KEY, "n3sted-s3cret"):
        assert secret.encode() not in raw
        assert secret.encode("utf-16-le") not in raw


def test_connection_without_secrets_is_not_marked_encrypted() -> None:
    add_connection(ConnectionInfo(conn_id="plain", conn_type="http", host="h", extra={"timeout": "3"}))
    [(_, password, extra, is_encrypted, is_extra_encrypted)] = _raw_rows()
    assert password is None and not is_encrypted and not is_extra_encrypted
    assert json.loads(extra) == {"timeout": "3"}
    assert get_connection("plain").extra == {"timeout": "3"}


def test_wrong_key_on_read_is_a_fernet_key_error() -> None:
    add_connection(_secretive())
    get_config().set_persistent("core", "fernet_key", crypto.generate_key())
    with pytest.raises(FernetKeyError, match="cannot decrypt"):
        get_connection("warehouse")


def test_a_bad_key_fails_before_anything_is_written() -> None:
    get_config().set_persistent("core", "fernet_key", "not-a-key")
    with pytest.raises(FernetKeyError):
        add_connection(_secretive())
    get_config().set_persistent("core", "fernet_key", crypto.generate_key())
    assert list_connections() == []


# --- FLUX_CONN_ environment variables ------------------------------------------------------------------


def test_environment_variable_takes_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    add_connection(_secretive())
    monkeypatch.setenv("FLUX_CONN_WAREHOUSE", "postgresql://env_user:env%2Fpass@env-host:5433/envdb?sslmode=require")
    info = get_connection("warehouse")
    assert (info.conn_type, info.host, info.port, info.login, info.password, info.schema) == (
        "postgres", "env-host", 5433, "env_user", "env/pass", "envdb",
    )
    assert info.extra == {"sslmode": "require"}
    assert info.source == "env"
    listed = {c.conn_id: c for c in list_connections(include_env=True)}
    assert listed["warehouse"].source == "env"
    assert list_connections()[0].host == "db.example.com"  # the table still holds its own
    monkeypatch.delenv("FLUX_CONN_WAREHOUSE")
    assert get_connection("warehouse").host == "db.example.com"


def test_environment_only_connection_with_dashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUX_CONN_MY_DB", "mysql://u:p@h/d")
    assert get_connection("my-db").host == "h"
    assert [c.conn_id for c in list_connections(include_env=True)] == ["my_db"]
    with pytest.raises(ConnectionNotFound, match="FLUX_CONN_MY_DB"):
        delete_connection("my-db")


def test_malformed_environment_uri_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUX_CONN_BROKEN", "nonsense")
    with pytest.raises(InvalidConnectionURI, match="environment variable FLUX_CONN_BROKEN"):
        get_connection("broken")


# --- secrets for log masking -------------------------------------------------------------------------


def test_secrets_of_collects_password_and_secret_extras() -> None:
    info = _secretive()
    info.extra["servers"] = [{"token": "t0ken-in-a-list"}]
    info.extra["credentials"] = {"user": "svc", "key": 12345}
    found = secrets_of(info)
    assert {PASSWORD, API_KEY, "n3sted-s3cret", "t0ken-in-a-list", "svc", "12345"} <= found
    assert "Pl41n-T3xt-P%40ss%2Fword" in found  # the password as it appears inside a URI
    assert "utf8mb4" not in found and "" not in found


def test_hooks_register_the_secrets_they_load() -> None:
    clear_secrets()
    register_secret("")
    register_secret(None)
    assert known_secrets() == frozenset()
    add_connection(_secretive())
    BaseHook.get_connection("warehouse")
    assert {PASSWORD, API_KEY, "n3sted-s3cret"} <= known_secrets()
    clear_secrets()


# --- key rotation -------------------------------------------------------------------------------------


def test_rotation_keeps_everything_decryptable(flux_env: Path) -> None:
    add_connection(_secretive("one"))
    add_connection(_secretive("two"))
    add_connection(ConnectionInfo(conn_id="plain", conn_type="http", host="h"))
    old_key = get_config().get("core", "fernet_key")
    before = _raw_rows()
    done = switch_fernet_key()
    assert done.rotated == 2
    new_key = get_config().get("core", "fernet_key")
    assert new_key != old_key and "," not in new_key
    from flux.config import reset_config

    reset_config()  # as a new process would read flux.toml
    assert get_config().get("core", "fernet_key") == new_key
    assert get_connection("one") == _secretive("one")
    assert get_connection("two") == _secretive("two")
    after = _raw_rows()
    assert [row[1] for row in after] != [row[1] for row in before]
    # The old key alone can no longer read them: the rotation really re-encrypted.
    get_config().set_persistent("core", "fernet_key", old_key)
    with pytest.raises(FernetKeyError):
        get_connection("one")


def test_rotation_with_a_staged_new_old_key_pair() -> None:
    add_connection(_secretive())
    old = get_config().get("core", "fernet_key")
    new = crypto.generate_key()
    get_config().set_persistent("core", "fernet_key", f"{new},{old}")
    assert rotate_fernet_key() == 1
    get_config().set_persistent("core", "fernet_key", new)
    assert get_connection("warehouse") == _secretive()


def test_failed_rotation_changes_nothing(flux_env: Path) -> None:
    add_connection(_secretive("good"))
    foreign = crypto.generate_key()
    original = get_config().get("core", "fernet_key")
    get_config().set_persistent("core", "fernet_key", foreign)
    add_connection(_secretive("foreign"))  # encrypted with a key that then goes missing
    get_config().set_persistent("core", "fernet_key", original)
    before = _raw_rows()
    with pytest.raises(FernetKeyError):
        switch_fernet_key()
    assert _raw_rows() == before
    assert get_config().get("core", "fernet_key") == original
    assert get_connection("good") == _secretive("good")


def test_rotation_refuses_to_rewrite_a_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = crypto.generate_key()
    monkeypatch.setenv(crypto.KEY_ENV, key)
    from flux.config import reset_config

    reset_config()
    add_connection(_secretive())
    with pytest.raises(FernetKeyError, match="FLUX__CORE__FERNET_KEY"):
        switch_fernet_key()
    new = crypto.generate_key()
    monkeypatch.setenv(crypto.KEY_ENV, f"{new},{key}")
    reset_config()
    assert switch_fernet_key().from_environment
    monkeypatch.setenv(crypto.KEY_ENV, new)
    reset_config()
    assert get_connection("warehouse") == _secretive()
