"""SQL injection: values are always driver parameters, table and column names quoted identifiers.

Every reading and writing method of DbApiHook (on SQLite, through a small hook of this test) and
of MySqlHook (on MariaDB, with batched INSERTs and with LOAD DATA LOCAL INFILE), and the operators
that move data, get values and table names written to break out of their quotes. Each value must
be stored and found literally; each table name must either work as the name of a table or be
refused with an error, and the table the injected SQL would drop must still be there.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flux.connections import ConnectionInfo, add_connection
from flux.exceptions import HookError
from flux.hooks.dbapi import DbApiHook
from flux.hookspecs import hookimpl
from flux.plugins import PluginInfo, get_plugin_manager
from flux.transfers import DbApiToDbApiTransfer

#: values that end a quoted string in one SQL dialect or another, then inject a statement
VALUES = [
    "'; DROP TABLE t;--",
    "\\'; DROP TABLE t;--",
    "\"; DROP TABLE t;--",
    "`); DROP TABLE t;--",
    "x'); DELETE FROM victim; --",
    "%s %(v)s ? :1 $1",
]
#: table names with a backtick, quotes, spaces, and injected statements
TABLE_NAMES = [
    "with space",
    "back`tick",
    "double\"quote",
    "single'quote",
    "t`; DROP TABLE victim; --",
    "t\"; DROP TABLE victim; --",
    "t'); DROP TABLE victim; --",
]


class SqliteSecurityHook(DbApiHook):
    """sqlite3 on the file named by the connection's schema."""

    conn_type = "sec_sqlite"
    conn_name_attr = "sqlite_conn_id"
    placeholder = "?"

    def get_conn(self) -> Any:
        return sqlite3.connect(self.connection.schema or ":memory:")


class _HookPlugin:
    @hookimpl
    def flux_hooks(self) -> list[type]:
        return [SqliteSecurityHook]


@dataclass
class Backend:
    """A real database, a hook on it, and a way to run SQL on it without the hook."""

    name: str
    hook: DbApiHook
    raw: Callable[[str], list[tuple[Any, ...]]]

    def q(self, name: str) -> str:
        """``name`` as an identifier, quoted by the test itself (not by the code under test)."""
        mark = "`" if self.name.startswith("mariadb") else '"'
        return mark + name.replace(mark, mark * 2) + mark

    @property
    def p(self) -> str:
        return self.hook.placeholder

    def tables(self) -> set[str]:
        if self.name == "sqlite":
            return {row[0] for row in self.raw("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {row[0] for row in self.raw("SHOW TABLES")}


def _sqlite(tmp_path: Path) -> Backend:
    manager = get_plugin_manager()
    manager.register(_HookPlugin(), PluginInfo("sec-sqlite", __name__, "flux-tests", "0"))
    path = tmp_path / "data.db"
    add_connection(ConnectionInfo(conn_id="sec_db", conn_type="sec_sqlite", schema=str(path)))

    def raw(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    return Backend("sqlite", SqliteSecurityHook(conn_id="sec_db"), raw)


def _mariadb(url: str, local_infile: bool) -> Backend:
    pytest.importorskip("flux_mysql", reason="flux-mysql is not installed")
    import pymysql
    from sqlalchemy.engine import make_url

    from flux_mysql.hooks import MySqlHook

    database = make_url(url).database
    extra = {"local_infile": "true"} if local_infile else {}
    add_connection(ConnectionInfo(conn_id="sec_db", conn_type="mysql", host="127.0.0.1", port=3306,
                                  login="root", schema=database, extra=extra))

    def raw(sql: str) -> list[tuple[Any, ...]]:
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", database=database,
                               charset="utf8mb4", autocommit=True)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            conn.close()

    name = "mariadb_local_infile" if local_infile else "mariadb"
    return Backend(name, MySqlHook(mysql_dbid="sec_db"), raw)


@pytest.fixture(params=["sqlite", "mariadb", "mariadb_local_infile"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield _sqlite(tmp_path)
        get_plugin_manager().unregister("sec-sqlite")
        return
    url = request.getfixturevalue("mysql_url")
    yield _mariadb(url, local_infile=request.param == "mariadb_local_infile")


def text_type(backend: Backend) -> str:
    return "TEXT" if backend.name == "sqlite" else "VARCHAR(200) CHARACTER SET utf8mb4"


def make_tables(backend: Backend, *names: str) -> None:
    for name in names:
        backend.raw(f"CREATE TABLE {backend.q(name)} (id INTEGER PRIMARY KEY, v {text_type(backend)})")
    backend.raw(f"CREATE TABLE victim (id INTEGER PRIMARY KEY, v {text_type(backend)})")
    backend.raw("INSERT INTO victim (id, v) VALUES (1, 'still here')")


def write_csv(path: Path, rows: list[tuple[int, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "v"])
        writer.writerows(rows)
    return path


def assert_victim_intact(backend: Backend) -> None:
    assert "victim" in backend.tables()
    assert backend.raw("SELECT id, v FROM victim") == [(1, "still here")]


def test_values_are_stored_and_found_literally_by_every_method(
        backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_tables(backend, "t")
    hook, p = backend.hook, backend.p
    caplog.set_level("INFO")
    for i, value in enumerate(VALUES):
        hook.run(f"INSERT INTO t (id, v) VALUES ({p}, {p})", parameters=(i, value))
        hook.run([f"INSERT INTO t (id, v) VALUES ({p}, {p})"], parameters=(100 + i, value),
                 autocommit=True)
        hook.insert_rows("t", [(200 + i, value)], columns=["id", "v"])
        hook.insert_rows("t", [(300 + i, value)])  # the columns read from the table
    hook.load_csv(write_csv(tmp_path / "load.csv", [(400 + i, v) for i, v in enumerate(VALUES)]), "t")
    hook.bulk_load("t", write_csv(tmp_path / "bulk.csv", [(500 + i, v) for i, v in enumerate(VALUES)]))
    if backend.name == "mariadb_local_infile":  # the file really went through LOAD DATA
        assert "with LOAD DATA LOCAL INFILE" in caplog.text
    if backend.name.startswith("mariadb"):
        from flux_mysql.operators import MySqlOperator
        from flux_mysql.transfers import CsvToMySqlOperator

        for i, value in enumerate(VALUES):
            MySqlOperator(task_id=f"insert_{i}", sql="INSERT INTO t (id, v) VALUES (%s, %s)",
                          mysql_dbid="sec_db", parameters=(600 + i, value)).execute({})
        rows = [(700 + i, v) for i, v in enumerate(VALUES)]
        CsvToMySqlOperator(task_id="csv", path=str(write_csv(tmp_path / "op.csv", rows)), table="t",
                           mysql_dbid="sec_db").execute({})
        sources = 8
    else:
        sources = 6

    assert_victim_intact(backend)
    stored = backend.raw("SELECT id, v FROM t ORDER BY id")
    assert len(stored) == sources * len(VALUES)
    for stored_id, stored_value in stored:
        assert stored_value == VALUES[stored_id % 100], "a value was not stored literally"
    for i, value in enumerate(VALUES):
        where = f"SELECT id, v FROM t WHERE v = {p} ORDER BY id"
        found = hook.get_records(where, (value,))
        assert [row[0] % 100 for row in found] == [i] * sources
        assert hook.get_first(where, (value,)) == (i, value)
        assert [r["v"] for r in json.loads(hook.get_json(where, (value,)))] == [value] * sources
        out = tmp_path / f"out_{i}.csv"
        assert hook.to_csv(where, out, parameters=(value,)) == sources
        with out.open(newline="", encoding="utf-8") as handle:
            assert {row["v"] for row in csv.DictReader(handle)} == {value}
    try:
        import pandas  # noqa: F401
    except ImportError:
        pass
    else:
        frame = hook.get_pandas_df(f"SELECT v FROM t WHERE v = {p}", (VALUES[0],))
        assert list(frame["v"]) == [VALUES[0]] * sources
    assert_victim_intact(backend)


def test_table_names_are_quoted_identifiers(backend: Backend, tmp_path: Path) -> None:
    make_tables(backend, "source", *TABLE_NAMES)
    backend.raw("INSERT INTO source (id, v) VALUES (7, 'copied')")
    hook = backend.hook
    for n, name in enumerate(TABLE_NAMES):
        assert hook.get_table_columns(name) == ["id", "v"]
        hook.insert_rows(name, [(1, "inserted")])
        hook.insert_rows(name, [(2, "inserted with columns")], columns=["id", "v"])
        hook.load_csv(write_csv(tmp_path / f"load_{n}.csv", [(3, "loaded")]), name)
        transfer: Any
        if backend.name.startswith("mariadb"):
            from flux_mysql.transfers import CsvToMySqlOperator, MySqlToMySqlOperator

            CsvToMySqlOperator(task_id=f"csv_{n}", path=str(write_csv(tmp_path / f"op_{n}.csv", [(4, "op")])),
                               table=name, mysql_dbid="sec_db").execute({})
            transfer = MySqlToMySqlOperator(task_id=f"copy_{n}", sql="SELECT id, v FROM source",
                                            source_mysql_dbid="sec_db", destination_mysql_dbid="sec_db",
                                            destination_table=name)
        else:
            backend.raw(f"INSERT INTO {backend.q(name)} (id, v) VALUES (4, 'op')")
            transfer = DbApiToDbApiTransfer(task_id=f"copy_{n}", sql="SELECT id, v FROM source",
                                            source_conn_id="sec_db", destination_conn_id="sec_db",
                                            destination_table=name)
        assert transfer.execute({}) == 1
        assert backend.raw(f"SELECT id FROM {backend.q(name)} ORDER BY id") == [(1,), (2,), (3,), (4,), (7,)]
    assert_victim_intact(backend)
    assert set(TABLE_NAMES) <= backend.tables()


@pytest.mark.parametrize("name", ["missing`; DROP TABLE victim; --", "missing\"; DROP TABLE victim; --",
                                  "missing'; DROP TABLE victim; --", " ", ""])
def test_a_bad_table_name_is_refused_cleanly(backend: Backend, tmp_path: Path, name: str) -> None:
    make_tables(backend)
    driver_error = sqlite3.Error if backend.name == "sqlite" else __import__("pymysql").Error
    with pytest.raises((HookError, driver_error)):
        backend.hook.insert_rows(name, [(1, "x")])
    with pytest.raises((HookError, driver_error)):
        backend.hook.insert_rows(name, [(1, "x")], columns=["id", "v"])
    with pytest.raises((HookError, driver_error)):
        backend.hook.load_csv(write_csv(tmp_path / "x.csv", [(1, "x")]), name)
    assert_victim_intact(backend)
