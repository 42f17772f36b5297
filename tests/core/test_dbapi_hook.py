"""DbApiHook on real databases: SQLite (sqlite3), MariaDB (PyMySQL) and PostgreSQL (psycopg).

The hooks below are test-only subclasses: the real ones live in plugins (flux-mysql...). Each
connection goes through the normal path, stored encrypted in the metadata database.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
import tracemalloc
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flux.connections import ConnectionInfo, add_connection
from flux.exceptions import ConnectionNotFound, HookError, MissingDependencyError, MissingPluginError
from flux.hooks.base import BaseHook
from flux.hooks.dbapi import DbApiHook, json_value, split_statements
from flux.hookspecs import hookimpl
from flux.plugins import PluginInfo, get_plugin_manager

INJECTION = "'; DROP TABLE t;--"
UNICODE = "Grüße, 東京 🚀 — naïve café"


class SqliteTestHook(DbApiHook):
    """sqlite3; the database file is the connection's schema."""

    conn_type = "test_sqlite"
    conn_name_attr = "sqlite_conn_id"
    placeholder = "?"
    server_side_cursors = 0

    def get_conn(self) -> Any:
        return sqlite3.connect(f"file:{self.connection.schema}?mode=rwc", uri=True)

    def get_server_side_cursor(self, conn: Any) -> Any:
        self.server_side_cursors += 1
        return conn.cursor()  # sqlite3 cursors step through the result lazily


class PostgresTestHook(DbApiHook):
    """psycopg 3, streaming through a named (server-side) cursor."""

    conn_type = "test_postgres"
    conn_name_attr = "postgres_conn_id"
    server_side_cursors = 0

    def get_conn(self) -> Any:
        import psycopg

        c = self.connection
        return psycopg.connect(
            host=c.host, port=c.port or 5432, user=c.login, password=c.password, dbname=c.schema,
            connect_timeout=5,
        )

    def get_server_side_cursor(self, conn: Any) -> Any:
        self.server_side_cursors += 1
        return conn.cursor(name=f"flux_{uuid.uuid4().hex[:12]}")


class MariaDbTestHook(DbApiHook):
    """PyMySQL, streaming through an unbuffered SSCursor."""

    conn_type = "test_mysql"
    conn_name_attr = "mysql_dbid"
    identifier_quote = "`"
    sql_backslash_escapes = True
    sql_hash_comments = True
    sql_dollar_quotes = False
    server_side_cursors = 0

    def get_conn(self) -> Any:
        import pymysql

        c = self.connection
        return pymysql.connect(
            host=c.host, port=c.port or 3306, user=c.login, password=c.password or "",
            database=c.schema, charset="utf8mb4", connect_timeout=5,
        )

    def get_server_side_cursor(self, conn: Any) -> Any:
        import pymysql.cursors

        self.server_side_cursors += 1
        return conn.cursor(pymysql.cursors.SSCursor)


@dataclass
class Backend:
    name: str
    hook: DbApiHook
    ddl: str  # CREATE TABLE t with id, name, amount, created, day, data

    @property
    def p(self) -> str:
        return self.hook.placeholder

    def q(self, name: str) -> str:
        return self.hook.quote_identifier(name)

    @property
    def driver_error(self) -> type[Exception]:
        """The driver's PEP 249 ``Error`` base class."""
        if self.name == "mysql":
            import pymysql

            return pymysql.Error
        if self.name == "postgres":
            import psycopg

            return psycopg.Error
        return sqlite3.Error


DDL = {
    "sqlite": "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount NUMERIC, created TIMESTAMP, "
              "day DATE, data BLOB)",
    "mysql": "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(200), amount DECIMAL(12,2), "
             "created DATETIME(6), day DATE, data VARBINARY(100)) ENGINE=InnoDB CHARACTER SET utf8mb4",
    "postgres": "CREATE TABLE t (id INT PRIMARY KEY, name TEXT, amount NUMERIC(12,2), created TIMESTAMP, "
                "day DATE, data BYTEA)",
}


def _server_info(conn_id: str, url: str, conn_type: str) -> ConnectionInfo:
    info = ConnectionInfo.from_uri(conn_id, url)
    info.conn_type = conn_type
    return info


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name = request.param
    if name == "sqlite":
        info = ConnectionInfo(conn_id="lite", conn_type="test_sqlite", schema=str(tmp_path / "data.db"))
        hook: DbApiHook = SqliteTestHook(sqlite_conn_id="lite")
    elif name == "mysql":
        info = _server_info("maria", request.getfixturevalue("mysql_url"), "test_mysql")
        hook = MariaDbTestHook(mysql_dbid="maria")
    else:
        info = _server_info("pg", request.getfixturevalue("postgres_url"), "test_postgres")
        hook = PostgresTestHook(postgres_conn_id="pg")
    add_connection(info)
    hook.run(DDL[name])
    yield Backend(name, hook, DDL[name])


def _insert(b: Backend, *rows: tuple[Any, ...]) -> None:
    for row in rows:
        b.hook.run(f"INSERT INTO t (id, name) VALUES ({b.p}, {b.p})", parameters=row)


# --- reading ---------------------------------------------------------------------------------------


def test_get_records_and_get_first(backend: Backend) -> None:
    _insert(backend, (1, "a"), (2, None), (3, UNICODE))
    assert backend.hook.get_records("SELECT id, name FROM t ORDER BY id") == (
        (1, "a"), (2, None), (3, UNICODE),
    )
    assert backend.hook.get_records(f"SELECT name FROM t WHERE id > {backend.p} ORDER BY id", (1,)) == (
        (None,), (UNICODE,),
    )
    assert backend.hook.get_first("SELECT id, name FROM t ORDER BY id DESC") == (3, UNICODE)
    assert backend.hook.get_first("SELECT id FROM t WHERE id > 99") is None
    assert backend.hook.get_records("SELECT id FROM t WHERE id > 99") == ()


def test_injection_parameter_is_stored_literally(backend: Backend) -> None:
    _insert(backend, (1, INJECTION))
    found = backend.hook.get_records(f"SELECT id, name FROM t WHERE name = {backend.p}", (INJECTION,))
    assert found == ((1, INJECTION),)
    assert backend.hook.get_first("SELECT COUNT(*) FROM t") == (1,)  # the table is still there


def test_percent_signs_without_parameters(backend: Backend) -> None:
    assert backend.hook.get_first("SELECT '100%'") == ("100%",)


def test_get_records_of_a_statement_that_is_not_a_query(backend: Backend) -> None:
    with pytest.raises(HookError, match="not a query"):
        backend.hook.get_records("UPDATE t SET name = 'x'")


# --- run -------------------------------------------------------------------------------------------


def test_run_splits_a_script_honouring_quotes_and_comments(backend: Backend) -> None:
    script = """
        INSERT INTO t (id, name) VALUES (1, 'a;b');
        -- a comment; with a semicolon
        INSERT INTO t (id, name) VALUES (2, 'it''s; fine');  /* block; comment */
        ;
        SELECT name FROM t ORDER BY id
    """
    assert backend.hook.run(script) == (("a;b",), ("it's; fine",))


def test_run_returns_the_row_count_of_the_last_statement(backend: Backend) -> None:
    _insert(backend, (1, "a"), (2, "b"), (3, "c"))
    assert backend.hook.run(f"UPDATE t SET name = {backend.p} WHERE id < 3", parameters=("z",)) == 2
    assert backend.hook.run(["DELETE FROM t WHERE id = 1", "DELETE FROM t WHERE id > 1"]) == 2


DUPLICATE = ["INSERT INTO t (id, name) VALUES (1, 'a')", "INSERT INTO t (id, name) VALUES (1, 'dup')"]


def test_run_is_one_transaction_rolled_back_on_failure(backend: Backend) -> None:
    with pytest.raises(backend.driver_error):  # the driver's own error (IntegrityError...)
        backend.hook.run(DUPLICATE)
    assert backend.hook.get_first("SELECT COUNT(*) FROM t") == (0,)


def test_run_with_autocommit_keeps_earlier_statements(backend: Backend) -> None:
    with pytest.raises(backend.driver_error):
        backend.hook.run(DUPLICATE, autocommit=True)
    assert backend.hook.get_records("SELECT id, name FROM t") == ((1, "a"),)


def test_run_needs_a_statement(backend: Backend) -> None:
    with pytest.raises(HookError, match="no SQL statement"):
        backend.hook.run("  -- nothing here;\n ; ")


# --- pandas and JSON ------------------------------------------------------------------------------------


def test_get_pandas_df(backend: Backend) -> None:
    pytest.importorskip("pandas")
    _insert(backend, (1, "a"), (2, None), (3, UNICODE))
    df = backend.hook.get_pandas_df(f"SELECT id, name FROM t WHERE id >= {backend.p} ORDER BY id", (1,))
    assert list(df.columns) == ["id", "name"]
    assert df["id"].tolist() == [1, 2, 3]
    assert df["name"].tolist()[0] == "a" and df["name"].tolist()[2] == UNICODE
    assert df["name"].isna().tolist() == [False, True, False]
    empty = backend.hook.get_pandas_df("SELECT id, name FROM t WHERE id > 99")
    assert list(empty.columns) == ["id", "name"] and len(empty) == 0


def test_get_pandas_df_without_pandas(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # what `import pandas` sees when not installed
    with pytest.raises(MissingDependencyError) as info:
        backend.hook.get_pandas_df("SELECT 1")
    assert str(info.value) == "pandas is not installed: pip install 'flux-core[pandas]'"


def test_get_json(backend: Backend) -> None:
    b = backend
    created = datetime(2024, 2, 29, 13, 45, 30, 123456)
    row: tuple[Any, ...] = (1, UNICODE, Decimal("1234.50"), created, date(2024, 3, 1), "bytes ✓".encode())
    if b.name == "sqlite":  # sqlite3 binds neither Decimal nor (without deprecated adapters) dates
        row = (1, UNICODE, 1234.5, created.isoformat(" "), "2024-03-01", "bytes ✓".encode())
    b.hook.run(f"INSERT INTO t (id, name, amount, created, day, data) VALUES ({', '.join([b.p] * 6)})", row)
    b.hook.run(f"INSERT INTO t (id, name, data) VALUES ({b.p}, {b.p}, {b.p})", (2, INJECTION, b"\xff\0\xfe"))
    records = json.loads(b.hook.get_json("SELECT id, name, amount, created, day, data FROM t ORDER BY id"))
    assert records[1] == {
        "id": 2, "name": INJECTION, "amount": None, "created": None, "day": None, "data": "/wD+",
    }
    first = records[0]
    assert (first["id"], first["name"], first["data"]) == (1, UNICODE, "bytes ✓")
    if b.name == "sqlite":  # sqlite3 hands back what it stored: numbers and ISO text
        assert first["amount"] == 1234.5
        assert first["created"] == "2024-02-29 13:45:30.123456" and first["day"] == "2024-03-01"
    else:
        assert first["amount"] == "1234.50"  # Decimal: always a string, exact
        assert first["created"] == "2024-02-29T13:45:30.123456"
        assert first["day"] == "2024-03-01"
    assert json.loads(b.hook.get_json("SELECT id FROM t WHERE id > 99")) == []


def test_get_json_refuses_duplicate_column_names(backend: Backend) -> None:
    with pytest.raises(HookError, match="several columns named id"):
        backend.hook.get_json("SELECT 1 AS id, 2 AS id")


def test_json_value_rules() -> None:
    assert json_value(Decimal("10")) == "10"
    assert json_value(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05"
    assert json_value(time(3, 4)) == "03:04:00"
    assert json_value(timedelta(minutes=2)) == 120.0
    assert json_value(float("nan")) is None and json_value(float("inf")) is None
    assert json_value(memoryview(b"abc")) == "abc"
    assert json_value(bytearray(b"\x80")) == "gA=="
    assert json_value(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert json_value({"a": [Decimal("1.5"), None]}) == {"a": ["1.5", None]}


# --- CSV -------------------------------------------------------------------------------------------


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_to_csv(backend: Backend, tmp_path: Path) -> None:
    _insert(backend, (1, "a,b"), (2, None), (3, UNICODE), (4, 'quote " and\nnewline'))
    target = tmp_path / "out.csv"
    count = backend.hook.to_csv("SELECT id, name FROM t ORDER BY id", target, batch_size=3)
    assert count == 4
    assert _read_csv(target) == [
        ["id", "name"], ["1", "a,b"], ["2", ""], ["3", UNICODE], ["4", 'quote " and\nnewline'],
    ]
    assert backend.hook.server_side_cursors == 1  # type: ignore[attr-defined]
    backend.hook.to_csv(
        f"SELECT id, name FROM t WHERE id > {backend.p} ORDER BY id", target, parameters=(2,),
        delimiter=";", header=False, null_value="\\N",
    )
    assert target.read_text(encoding="utf-8").splitlines()[0] == f"3;{UNICODE}"


def test_to_csv_leaves_no_partial_file(backend: Backend, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(backend.driver_error):
        backend.hook.to_csv("SELECT no_such_column FROM t", target)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.csv")] == []


STREAM_SQL = {
    "sqlite": "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 200000) "
              "SELECT i, printf('%0100d', i) AS payload FROM s",
    "mysql": "SELECT seq AS i, LPAD(seq, 100, '0') AS payload FROM seq_1_to_200000",
    "postgres": "SELECT i, lpad(i::text, 100, '0') AS payload FROM generate_series(1, 200000) AS i",
}


@pytest.mark.slow
def test_to_csv_of_200k_rows_keeps_memory_flat(backend: Backend, tmp_path: Path) -> None:
    target = tmp_path / "big.csv"
    tracemalloc.start()
    try:
        count = backend.hook.to_csv(STREAM_SQL[backend.name], target, batch_size=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000
    size = target.stat().st_size
    assert size > 20_000_000
    with target.open(encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(2)]
    assert lines[1].startswith("1,") and lines[1].rstrip().endswith("0001")
    # Buffering the result would hold every row as Python objects: several times the file size
    # with PyMySQL and sqlite3. (psycopg buffers in libpq, out of tracemalloc's sight: there the
    # named cursor from get_server_side_cursor is what streams.)
    assert peak < size / 10, f"peak {peak} bytes for a {size}-byte result"
    assert backend.hook.server_side_cursors == 1  # type: ignore[attr-defined]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_csv_with_header(backend: Backend, tmp_path: Path) -> None:
    source = _write(tmp_path / "in.csv", f'name,id\n"a,b",1\n,2\n"{UNICODE}",3\n"{INJECTION}",4\n\n')
    assert backend.hook.load_csv(source, "t", batch_size=2) == 4
    assert backend.hook.get_records("SELECT id, name FROM t ORDER BY id") == (
        (1, "a,b"), (2, None), (3, UNICODE), (4, INJECTION),
    )


def test_load_csv_takes_fields_larger_than_the_csv_default(backend: Backend, tmp_path: Path) -> None:
    if backend.name == "mysql":
        pytest.skip("name is VARCHAR(200) there; flux-mysql's tests load 16 MB values")
    import csv

    big = "x" * 300_000  # the csv module refuses fields over 131,072 characters by default
    source = _write(tmp_path / "big.csv", f"id,name\n1,{big}\n")
    limit = csv.field_size_limit()
    assert backend.hook.load_csv(source, "t") == 1
    assert backend.hook.get_first("SELECT name FROM t") == (big,)
    assert csv.field_size_limit() == limit  # put back afterwards


def test_load_csv_round_trip_and_column_options(backend: Backend, tmp_path: Path) -> None:
    _insert(backend, (1, "x"), (2, None))
    dumped = tmp_path / "dump.csv"
    backend.hook.to_csv("SELECT id + 10, name FROM t ORDER BY id", dumped, header=False, delimiter="|")
    assert backend.hook.load_csv(dumped, "t", columns=["ID", "name"], header=False, delimiter="|") == 2
    loaded = backend.hook.get_records("SELECT id, name FROM t WHERE id > 10 ORDER BY id")
    assert loaded == ((11, "x"), (12, None))


def test_load_csv_header_that_does_not_match_the_table(backend: Backend, tmp_path: Path) -> None:
    source = _write(tmp_path / "in.csv", "id,nmae\n1,a\n")
    with pytest.raises(HookError) as info:
        backend.hook.load_csv(source, "t")
    message = str(info.value)
    assert "CSV header of in.csv does not match table t" in message
    assert "'nmae'" in message and "id, name, amount" in message
    assert backend.hook.get_first("SELECT COUNT(*) FROM t") == (0,)


def test_load_csv_is_all_or_nothing(backend: Backend, tmp_path: Path) -> None:
    source = _write(tmp_path / "in.csv", "id,name\n1,a\n2,b\n3,c,extra\n")
    with pytest.raises(HookError, match=r"in.csv, line 4: 3 field\(s\), expected 2 \(id, name\)"):
        backend.hook.load_csv(source, "t", batch_size=1)  # two batches were sent before the bad line
    assert backend.hook.get_first("SELECT COUNT(*) FROM t") == (0,)


def test_load_csv_quotes_table_and_column_names(backend: Backend, tmp_path: Path) -> None:
    b = backend
    b.hook.run(f"CREATE TABLE {b.q('order items')} ({b.q('select')} INT, {b.q('from')} VARCHAR(20))")
    source = _write(tmp_path / "in.csv", "select,from\n1,x\n")
    assert b.hook.load_csv(source, "order items") == 1
    query = f"SELECT {b.q('select')}, {b.q('from')} FROM {b.q('order items')}"
    assert b.hook.get_records(query) == ((1, "x"),)
    with pytest.raises(HookError, match="cannot read the columns of table"):
        b.hook.load_csv(source, "t; DROP TABLE t")
    assert b.hook.get_first("SELECT COUNT(*) FROM t") == (0,)  # still there


def test_load_csv_errors_for_missing_or_empty_files(backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(HookError, match="cannot read"):
        backend.hook.load_csv(tmp_path / "missing.csv", "t")
    with pytest.raises(HookError, match="is empty"):
        backend.hook.load_csv(_write(tmp_path / "empty.csv", ""), "t")


def test_bulk_load_defaults_to_load_csv(backend: Backend, tmp_path: Path) -> None:
    source = _write(tmp_path / "in.csv", "id,name\n7,z\n")
    assert backend.hook.bulk_load("t", source) == 1
    assert backend.hook.get_records("SELECT id, name FROM t") == ((7, "z"),)


def test_insert_rows(backend: Backend) -> None:
    rows = ((i, f"n{i}") for i in range(25))
    assert backend.hook.insert_rows("t", rows, columns=["id", "name"], batch_size=10) == 25
    assert backend.hook.get_first("SELECT COUNT(*), MAX(name) FROM t") == (25, "n9")


def test_get_table_columns(backend: Backend) -> None:
    assert backend.hook.get_table_columns("t") == ["id", "name", "amount", "created", "day", "data"]


# --- connecting ------------------------------------------------------------------------------------


def test_test_connection(backend: Backend) -> None:
    ok, message = backend.hook.test_connection()
    assert ok, message


@pytest.mark.parametrize(
    "kind",
    [pytest.param("mysql", marks=pytest.mark.mysql), pytest.param("postgres", marks=pytest.mark.postgres)],
)
def test_connection_errors_name_the_connection_not_the_password(kind: str) -> None:
    hook_class = {"mysql": MariaDbTestHook, "postgres": PostgresTestHook}[kind]
    add_connection(ConnectionInfo(
        conn_id="down", conn_type=hook_class.conn_type, host="127.0.0.1", port=1, login="someone",
        password="hunter2-secret", schema="nothing",
    ))
    hook = hook_class(conn_id="down")
    with pytest.raises(HookError) as info:
        hook.get_records("SELECT 1")
    message = str(info.value)
    assert message.startswith(f"cannot connect to {hook_class.conn_type} connection 'down' at 127.0.0.1:1: ")
    assert "hunter2" not in message and "\n" not in message
    ok, why = hook.test_connection()
    assert not ok and "'down'" in why


def test_sqlite_connection_error_is_a_hook_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "no" / "such" / "dir.db")
    add_connection(ConnectionInfo(conn_id="lite", conn_type="test_sqlite", schema=missing))
    with pytest.raises(HookError, match="cannot connect to test_sqlite connection 'lite': "):
        SqliteTestHook(conn_id="lite").get_first("SELECT 1")


# --- statement splitting and identifiers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "options", "expected"),
    [
        ("SELECT 1; SELECT 2;", {}, ["SELECT 1", "SELECT 2"]),
        ("SELECT 'a;b'; SELECT \"c;d\"", {}, ["SELECT 'a;b'", 'SELECT "c;d"']),
        ("SELECT 'it''s;'; SELECT 2", {}, ["SELECT 'it''s;'", "SELECT 2"]),
        ("SELECT 1 -- x;y\n; SELECT 2", {}, ["SELECT 1 -- x;y", "SELECT 2"]),
        ("SELECT /* a; b */ 1; /* only; a comment */ ;", {}, ["SELECT /* a; b */ 1"]),
        ("SELECT `a;b` FROM t", {}, ["SELECT `a;b` FROM t"]),
        # Standard SQL: a backslash is an ordinary character; PostgreSQL E'' strings escape.
        ("SELECT 'C:\\'; SELECT 2", {}, ["SELECT 'C:\\'", "SELECT 2"]),
        ("SELECT E'a\\';b'; SELECT 2", {}, ["SELECT E'a\\';b'", "SELECT 2"]),
        ("SELECT 'a\\';b'; SELECT 2", {"backslash_escapes": True}, ["SELECT 'a\\';b'", "SELECT 2"]),
        ("SELECT 1 # x;y\n; SELECT 2", {"hash_comments": True}, ["SELECT 1 # x;y", "SELECT 2"]),
        ("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; SELECT f()", {},
         ["CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", "SELECT f()"]),
        ("DO $body$ BEGIN PERFORM 1; END $body$; SELECT 2", {},
         ["DO $body$ BEGIN PERFORM 1; END $body$", "SELECT 2"]),
        ("SELECT $1; SELECT 2", {}, ["SELECT $1", "SELECT 2"]),
        ("/*!40101 SET NAMES utf8 */; SELECT 2", {}, ["/*!40101 SET NAMES utf8 */", "SELECT 2"]),
        ("", {}, []),
        ("SELECT 'unterminated; string", {}, ["SELECT 'unterminated; string"]),
    ],
)
def test_split_statements(script: str, options: dict[str, bool], expected: list[str]) -> None:
    assert split_statements(script, **options) == expected


def test_quote_identifier() -> None:
    assert SqliteTestHook(conn_id="x").quote_identifier('we"ird') == '"we""ird"'
    assert SqliteTestHook(conn_id="x").quote_identifier("s.t") == '"s"."t"'
    assert MariaDbTestHook(conn_id="x").quote_identifier("a`b") == "`a``b`"
    for bad in ("", " ", "a..b", "t."):
        with pytest.raises(HookError, match="invalid SQL identifier"):
            SqliteTestHook(conn_id="x").quote_identifier(bad)


@pytest.mark.postgres
def test_run_against_postgres_function_body(request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url")
    add_connection(_server_info("pg", url, "test_postgres"))
    hook = PostgresTestHook(postgres_conn_id="pg")
    result = hook.run(
        "CREATE FUNCTION twice(x int) RETURNS int AS $$ SELECT x * 2; $$ LANGUAGE sql;\n"
        "SELECT twice(21);"
    )
    assert result == ((42,),)


# --- BaseHook ----------------------------------------------------------------------------------------


def test_hook_names_its_connection_in_every_accepted_way() -> None:
    assert MariaDbTestHook(mysql_dbid="local_mysql").conn_id == "local_mysql"
    assert MariaDbTestHook(mysql_dbid="local_mysql").mysql_dbid == "local_mysql"  # type: ignore[attr-defined]
    assert MariaDbTestHook(conn_id="c").mysql_dbid == "c"  # type: ignore[attr-defined]
    assert MariaDbTestHook("pos").conn_id == "pos"
    assert MariaDbTestHook(conn_id="same", mysql_dbid="same").conn_id == "same"
    with pytest.raises(HookError, match="name different connections"):
        MariaDbTestHook(conn_id="a", mysql_dbid="b")
    with pytest.raises(HookError, match="needs a connection id: pass mysql_dbid="):
        MariaDbTestHook()
    with pytest.raises(TypeError, match="'sqlite_conn_id'"):
        MariaDbTestHook(sqlite_conn_id="x")


def test_default_conn_id_and_lazy_loading() -> None:
    class Defaulted(SqliteTestHook):
        default_conn_id = "sqlite_default"

    hook = Defaulted()  # building a hook never queries the metadata database
    assert hook.conn_id == "sqlite_default"
    with pytest.raises(ConnectionNotFound, match="'sqlite_default' not found"):
        _ = hook.connection


@pytest.fixture
def sqlite_hook_plugin() -> Iterator[None]:
    manager = get_plugin_manager()
    plugin = types.SimpleNamespace(flux_hooks=hookimpl(lambda: [SqliteTestHook]))
    manager.register(plugin, PluginInfo("test-dbapi", "tests.test_dbapi_hook", "tests", "1.0"))
    try:
        yield
    finally:
        manager.unregister("test-dbapi")


def test_get_hook_finds_the_class_registered_for_the_conn_type(
    sqlite_hook_plugin: None, tmp_path: Path
) -> None:
    add_connection(ConnectionInfo(conn_id="lite", conn_type="test_sqlite", schema=str(tmp_path / "x.db")))
    hook = BaseHook.get_hook("lite")
    assert type(hook) is SqliteTestHook and hook.conn_id == "lite"
    assert hook.get_first("SELECT 40 + 2") == (42,)
    assert type(DbApiHook.get_hook("lite")) is SqliteTestHook
    with pytest.raises(HookError, match="is not a MariaDbTestHook"):
        MariaDbTestHook.get_hook("lite")


def test_get_hook_for_a_type_no_plugin_serves(sqlite_hook_plugin: None) -> None:
    add_connection(ConnectionInfo(conn_id="odd", conn_type="oddity", host="h"))
    with pytest.raises(MissingPluginError) as info:
        BaseHook.get_hook("odd")
    message = str(info.value)
    assert "connection 'odd' has type 'oddity'" in message and "test_sqlite" in message


def test_get_first_of_a_statement_that_is_not_a_query(backend: Backend) -> None:
    with pytest.raises(HookError, match="not a query"):
        backend.hook.get_first("DELETE FROM t")


def test_to_csv_into_a_missing_folder(backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(HookError, match=r"cannot write .*out\.csv"):
        backend.hook.to_csv("SELECT id FROM t", tmp_path / "no" / "such" / "out.csv")
