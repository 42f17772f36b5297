"""MySqlHook against a real MariaDB: every common method of the seed, connection settings, and
bad input (wrong password, unreachable server, hostile parameters, NULLs, emoji)."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pymysql
import pytest

from flux.connections import ConnectionInfo, add_connection
from flux.exceptions import HookError

from .conftest import MySqlDatabase

EMOJI = "snow ☃ rocket 🚀 family 👨‍👩‍👧"


def hook(conn_id: str = "local_mysql", **kwargs):
    from flux_mysql.hooks import MySqlHook

    return MySqlHook(mysql_dbid=conn_id, **kwargs)


@pytest.fixture
def people(mysql_db: MySqlDatabase) -> MySqlDatabase:
    mysql_db.sql("CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(100), born DATE, "
                 "balance DECIMAL(12, 2), seen DATETIME(6))")
    mysql_db.sql("INSERT INTO people VALUES (1, 'ada', '1815-12-10', 12.50, '2024-03-01 10:11:12.123456'), "
                 "(2, NULL, NULL, NULL, NULL)")
    return mysql_db


# --- the plugin ----------------------------------------------------------------------------------


def test_importable_as_the_seed_does_and_registered_for_mysql_connections():
    from flux.hooks import MySqlHook
    from flux.hooks.base import hook_class_for
    from flux.hooks.dbapi import DbApiHook

    assert issubclass(MySqlHook, DbApiHook)
    assert MySqlHook.__module__ == "flux_mysql.hooks"
    assert hook_class_for("mysql") is MySqlHook


def test_building_a_hook_reads_no_connection_and_imports_no_driver():
    import subprocess
    import sys

    code = ("import sys\nfrom flux.hooks import MySqlHook\nh = MySqlHook(mysql_dbid='nowhere')\n"
            "print(h.conn_id, 'pymysql' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["nowhere", "False"]


def test_conn_id_and_mysql_dbid_name_the_same_connection():
    from flux_mysql.hooks import MySqlHook

    assert MySqlHook(conn_id="x").mysql_dbid == "x"
    assert MySqlHook(mysql_dbid="x").conn_id == "x"
    assert MySqlHook().conn_id == "mysql_default"
    with pytest.raises(HookError, match="name different connections"):
        MySqlHook(conn_id="x", mysql_dbid="y")


# --- reading -------------------------------------------------------------------------------------


def test_get_records_is_a_tuple_of_tuples(people: MySqlDatabase):
    records = hook().get_records("SELECT id, name FROM people ORDER BY id")
    assert records == ((1, "ada"), (2, None))
    assert isinstance(records, tuple) and all(isinstance(row, tuple) for row in records)


def test_get_first_and_parameters_of_both_styles(people: MySqlDatabase):
    h = hook()
    assert h.get_first("SELECT name FROM people WHERE id = %s", (1,)) == ("ada",)
    assert h.get_first("SELECT name FROM people WHERE id = %(id)s", {"id": 1}) == ("ada",)
    assert h.get_first("SELECT name FROM people WHERE id = %s", (99,)) is None


def test_get_json_serializes_dates_decimals_and_nulls(people: MySqlDatabase):
    data = json.loads(hook().get_json("SELECT * FROM people ORDER BY id"))
    assert data == [
        {"id": 1, "name": "ada", "born": "1815-12-10", "balance": "12.50",
         "seen": "2024-03-01T10:11:12.123456"},
        {"id": 2, "name": None, "born": None, "balance": None, "seen": None},
    ]


def test_get_pandas_df(people: MySqlDatabase):
    pytest.importorskip("pandas")
    frame = hook().get_pandas_df("SELECT id, name, balance FROM people ORDER BY id")
    assert list(frame.columns) == ["id", "name", "balance"]
    assert frame["id"].tolist() == [1, 2]
    assert frame["name"].tolist()[0] == "ada"
    assert frame["balance"].tolist()[0] == Decimal("12.50")


def test_database_argument_overrides_the_connection_schema(people: MySqlDatabase, other_db: MySqlDatabase):
    other_db.sql("CREATE TABLE marker (v VARCHAR(10))")
    other_db.sql("INSERT INTO marker VALUES ('other')")
    assert hook(database=other_db.name).get_records("SELECT v FROM marker") == (("other",),)
    assert hook().get_first("SELECT DATABASE()") == (people.name,)


def test_values_come_back_with_their_types(people: MySqlDatabase):
    row = hook().get_first("SELECT born, balance, seen FROM people WHERE id = 1")
    assert row == (date(1815, 12, 10), Decimal("12.50"), datetime(2024, 3, 1, 10, 11, 12, 123456))


# --- run -----------------------------------------------------------------------------------------


def test_run_several_statements_with_parameters(mysql_db: MySqlDatabase):
    h = hook()
    h.run("CREATE TABLE t (id INT, label VARCHAR(50)); INSERT INTO t VALUES (1, 'semi;colon'); "
          "INSERT INTO t VALUES (2, 'it''s -- not a comment')")
    assert h.run("INSERT INTO t VALUES (%s, %s)", (3, "three")) == 1
    assert mysql_db.sql("SELECT id, label FROM t ORDER BY id") == (
        (1, "semi;colon"), (2, "it's -- not a comment"), (3, "three"))
    assert h.run("SELECT COUNT(*) FROM t") == ((3,),)


def test_run_without_autocommit_is_one_transaction(mysql_db: MySqlDatabase):
    mysql_db.sql("CREATE TABLE t (id INT PRIMARY KEY)")
    with pytest.raises(pymysql.err.IntegrityError):
        hook().run(["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)"], autocommit=False)
    assert mysql_db.sql("SELECT COUNT(*) FROM t") == ((0,),)
    with pytest.raises(pymysql.err.IntegrityError):
        hook().run(["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)"], autocommit=True)
    assert mysql_db.sql("SELECT id FROM t") == ((1,),)


def test_hostile_parameter_is_stored_literally(mysql_db: MySqlDatabase):
    mysql_db.sql("CREATE TABLE t (id INT, label TEXT)")
    hostile = "'; DROP TABLE t;-- \\' \" `"
    hook().run("INSERT INTO t VALUES (%s, %s)", (1, hostile))
    assert mysql_db.sql("SELECT label FROM t") == ((hostile,),)
    assert hook().get_first("SELECT id FROM t WHERE label = %s", (hostile,)) == (1,)


def test_table_names_are_quoted_as_identifiers(mysql_db: MySqlDatabase, tmp_path: Path):
    mysql_db.sql("CREATE TABLE victim (id INT)")
    data = tmp_path / "x.csv"
    data.write_text("id\n1\n")
    with pytest.raises(HookError, match="cannot read the columns of table `victim; DROP TABLE victim`"):
        hook().load_csv(data, "victim; DROP TABLE victim")
    mysql_db.sql("CREATE TABLE `we``ird name` (`the id` INT)")
    (tmp_path / "w.csv").write_text("the id\n7\n")
    assert hook().load_csv(tmp_path / "w.csv", "we`ird name") == 1
    assert hook().insert_rows("we`ird name", [(8,)]) == 1
    assert mysql_db.sql("SELECT `the id` FROM `we``ird name` ORDER BY 1") == ((7,), (8,))
    assert mysql_db.sql("SHOW TABLES LIKE 'victim'") == (("victim",),)


def test_nulls_and_emoji_round_trip(mysql_db: MySqlDatabase, tmp_path: Path):
    mysql_db.sql("CREATE TABLE t (id INT PRIMARY KEY, label VARCHAR(100), n INT)")
    h = hook()
    h.run("INSERT INTO t VALUES (%s, %s, %s)", (1, EMOJI, None))
    assert h.get_records("SELECT label, n FROM t") == ((EMOJI, None),)
    assert json.loads(h.get_json("SELECT label, n FROM t")) == [{"label": EMOJI, "n": None}]
    out = tmp_path / "t.csv"
    assert h.to_csv("SELECT id, label, n FROM t", out) == 1
    assert out.read_bytes().decode("utf-8") == f"id,label,n\r\n1,{EMOJI},\r\n"


def test_sql_syntax_error_is_the_servers_error(mysql_db: MySqlDatabase):
    with pytest.raises(pymysql.err.ProgrammingError) as caught:
        hook().run("SELEC 1")
    assert caught.value.args[0] == 1064
    assert "You have an error in your SQL syntax" in caught.value.args[1]


def test_insert_rows_on_duplicate(mysql_db: MySqlDatabase):
    mysql_db.sql("CREATE TABLE t (id INT PRIMARY KEY, label VARCHAR(5))")
    h = hook()
    assert h.insert_rows("t", [(1, "a"), (2, "b")]) == 2
    with pytest.raises(pymysql.err.IntegrityError):
        h.insert_rows("t", [(3, "c"), (1, "x")])
    assert mysql_db.sql("SELECT id, label FROM t ORDER BY id") == ((1, "a"), (2, "b"))
    h.insert_rows("t", [(1, "new"), (3, "c")], on_duplicate="replace")
    assert mysql_db.sql("SELECT id, label FROM t ORDER BY id") == ((1, "new"), (2, "b"), (3, "c"))
    h.insert_rows("t", [(2, "kept?"), (4, "d")], on_duplicate="ignore")
    assert mysql_db.sql("SELECT id, label FROM t ORDER BY id") == ((1, "new"), (2, "b"), (3, "c"), (4, "d"))
    # "ignore" is about keys only: a value too long still fails, and nothing is inserted
    with pytest.raises(pymysql.err.DataError):
        h.insert_rows("t", [(5, "e"), (6, "much too long")], on_duplicate="ignore")
    assert mysql_db.sql("SELECT COUNT(*) FROM t") == ((4,),)
    with pytest.raises(HookError, match="on_duplicate must be one of"):
        h.insert_rows("t", [(7, "g")], on_duplicate="upsert")


# --- to_csv ----------------------------------------------------------------------------------------


def test_to_csv_streams_with_an_unbuffered_cursor(mysql_db: MySqlDatabase, tmp_path: Path):
    import tracemalloc

    import pymysql.cursors

    h = hook()
    conn = h.get_conn()
    try:
        assert isinstance(h.get_server_side_cursor(conn), pymysql.cursors.SSCursor)
    finally:
        conn.close()
    rows = 200_000
    mysql_db.sql("CREATE TABLE digits (d INT)")
    mysql_db.sql("INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)")
    mysql_db.sql("CREATE TABLE big (id INT PRIMARY KEY, payload VARCHAR(100))")
    number = "a.d + 10 * b.d + 100 * c.d + 1000 * d.d + 10000 * e.d + 100000 * f.d"
    mysql_db.sql(f"INSERT INTO big SELECT {number}, REPEAT('x', 80) "
                 f"FROM digits a, digits b, digits c, digits d, digits e, digits f WHERE {number} < {rows}")
    out = tmp_path / "big.csv"
    tracemalloc.start()
    try:
        count = h.to_csv("SELECT id, payload FROM big ORDER BY id", out, batch_size=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows
    assert out.stat().st_size > 16 * 1024 * 1024
    # A buffered cursor holds all 200,000 rows (about 40 MB of Python objects) at once.
    assert peak < 8 * 1024 * 1024, f"to_csv peaked at {peak / 2**20:.1f} MiB"


def test_to_csv_of_a_statement_that_is_not_a_query(mysql_db: MySqlDatabase, tmp_path: Path):
    mysql_db.sql("CREATE TABLE t (id INT)")
    with pytest.raises(HookError, match="not a query"):
        hook().to_csv("INSERT INTO t VALUES (1)", tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


# --- load_csv --------------------------------------------------------------------------------------


@pytest.fixture(params=["insert", "local_infile"])
def loader(request: pytest.FixtureRequest, mysql_db: MySqlDatabase, monkeypatch: pytest.MonkeyPatch):
    """A hook whose load_csv takes one of the two paths (batched INSERTs or LOAD DATA)."""
    if request.param == "local_infile":
        monkeypatch.setenv("FLUX_CONN_LOCAL_MYSQL", mysql_db.uri(local_infile="true"))
    mysql_db.sql("CREATE TABLE t (id INT PRIMARY KEY, label VARCHAR(40), n INT NULL)")
    return hook()


def test_load_csv_loads_rows_with_nulls_quotes_and_emoji(loader, mysql_db: MySqlDatabase, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture):
    data = tmp_path / "rows.csv"
    data.write_text(
        'id,label,n\n1,plain,10\n2,"comma, ""quoted""",\n3,' + EMOJI + ',30\n'
        '4,"two\nlines",40\n5,back\\slash\ttab,50\n6,NULL,60\n7,\\N,70\n',
        encoding="utf-8",
    )
    caplog.set_level(logging.INFO, logger="flux.hooks")
    assert loader.load_csv(data, "t") == 7
    assert mysql_db.sql("SELECT id, label, n FROM t ORDER BY id") == (
        (1, "plain", 10), (2, 'comma, "quoted"', None), (3, EMOJI, 30), (4, "two\nlines", 40),
        (5, "back\\slash\ttab", 50), (6, "NULL", 60), (7, "\\N", 70))
    used_load_data = "LOAD DATA LOCAL INFILE" in caplog.text
    assert used_load_data == loader.local_infile_requested


def test_load_csv_with_columns_argument_and_no_header(loader, mysql_db: MySqlDatabase, tmp_path: Path):
    data = tmp_path / "rows.csv"
    data.write_text("bee,2\nant,1\n")
    assert loader.load_csv(data, "t", columns=["label", "id"], header=False) == 2
    assert mysql_db.sql("SELECT id, label, n FROM t ORDER BY id") == ((1, "ant", None), (2, "bee", None))


def test_load_csv_header_not_matching_the_table(loader, mysql_db: MySqlDatabase, tmp_path: Path):
    data = tmp_path / "rows.csv"
    data.write_text("id,title\n1,x\n")
    with pytest.raises(HookError, match=r"no column 'title' in the table .*nothing was loaded"):
        loader.load_csv(data, "t")
    assert mysql_db.sql("SELECT COUNT(*) FROM t") == ((0,),)


def test_load_csv_row_with_wrong_field_count_loads_nothing(loader, mysql_db: MySqlDatabase, tmp_path: Path):
    data = tmp_path / "rows.csv"
    data.write_text("id,label,n\n" + "".join(f"{i},ok,{i}\n" for i in range(1, 5000)) + "5000,short\n")
    with pytest.raises(HookError, match=r"rows.csv, line 5001: 2 field\(s\), expected 3"):
        loader.load_csv(data, "t", batch_size=100)
    assert mysql_db.sql("SELECT COUNT(*) FROM t") == ((0,),)


def test_load_csv_duplicate_key_and_too_long_value_load_nothing(loader, mysql_db: MySqlDatabase,
                                                               tmp_path: Path):
    duplicate = tmp_path / "dup.csv"
    duplicate.write_text("id,label\n1,a\n2,b\n1,again\n")
    with pytest.raises(pymysql.err.IntegrityError, match="Duplicate entry '1'"):
        loader.load_csv(duplicate, "t")
    too_long = tmp_path / "long.csv"
    too_long.write_text("id,label\n1,a\n2," + "x" * 41 + "\n")
    with pytest.raises(pymysql.err.DataError, match="label"):
        loader.load_csv(too_long, "t")
    not_a_number = tmp_path / "nan.csv"
    not_a_number.write_text("id,n\n1,one\n")
    with pytest.raises(pymysql.MySQLError, match="n"):
        loader.load_csv(not_a_number, "t")
    assert mysql_db.sql("SELECT COUNT(*) FROM t") == ((0,),)


def test_load_csv_missing_or_empty_file(loader, tmp_path: Path):
    with pytest.raises(HookError, match="cannot read"):
        loader.load_csv(tmp_path / "absent.csv", "t")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(HookError, match="is empty"):
        loader.load_csv(tmp_path / "empty.csv", "t")


def test_to_csv_then_load_csv_round_trip(loader, mysql_db: MySqlDatabase, tmp_path: Path):
    mysql_db.sql("CREATE TABLE src (id INT PRIMARY KEY, label VARCHAR(40), n INT NULL)")
    mysql_db.sql("INSERT INTO src VALUES (1, %s, NULL), (2, 'tab\there', 2), (3, '', 3)", (EMOJI,))
    out = tmp_path / "src.csv"
    assert loader.to_csv("SELECT * FROM src", out) == 3
    assert loader.load_csv(out, "t") == 3
    # An empty string and NULL are both written as an empty field: both load as NULL.
    assert mysql_db.sql("SELECT id, label, n FROM t ORDER BY id") == (
        (1, EMOJI, None), (2, "tab\there", 2), (3, None, 3))


# --- very large values ---------------------------------------------------------------------------


def test_a_16_mb_value_through_every_method(mysql_db: MySqlDatabase, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch):
    from flux_mysql.transfers import MySqlToMySqlOperator

    # 16,000,000 bytes of UTF-8 fits the server's default max_allowed_packet (16 MiB) with the
    # statement around it; the test reads the limit so that a larger server setting changes nothing.
    limit = int(mysql_db.sql("SELECT @@max_allowed_packet")[0][0])
    body = "é" * 8_000_000
    mysql_db.sql("CREATE TABLE big (id INT PRIMARY KEY, body LONGTEXT)")
    mysql_db.sql("CREATE TABLE copy (id INT PRIMARY KEY, body LONGTEXT)")
    h = hook()
    h.run("INSERT INTO big VALUES (%s, %s)", (1, body))
    assert h.get_first("SELECT LENGTH(body), body FROM big") == (16_000_000, body)
    out = tmp_path / "big.csv"
    assert h.to_csv("SELECT id, body FROM big", out) == 1
    assert h.load_csv(out, "copy") == 1
    assert mysql_db.sql("SELECT COUNT(*) FROM copy JOIN big USING (id, body)") == ((1,),)
    mysql_db.sql("DELETE FROM copy")
    monkeypatch.setenv("FLUX_CONN_LOCAL_MYSQL", mysql_db.uri(local_infile="true"))
    assert hook().load_csv(out, "copy") == 1
    assert mysql_db.sql("SELECT COUNT(*) FROM copy JOIN big USING (id, body)") == ((1,),)
    mysql_db.sql("DELETE FROM copy")
    mysql_db.sql("INSERT INTO big VALUES (0, 'small'), (3, 'small too')")
    transfer = MySqlToMySqlOperator(task_id="copy_big", sql="SELECT * FROM big ORDER BY id",
                                    source_mysql_dbid="local_mysql", destination_mysql_dbid="local_mysql",
                                    destination_table="copy", batch_size=2)
    assert transfer.execute({}) == 3
    assert mysql_db.sql("SELECT COUNT(*) FROM copy JOIN big USING (id, body)") == ((3,),)
    mysql_db.sql("DELETE FROM big WHERE id <> 1")
    # A value over the server's max_allowed_packet is refused whole, with the server's reason.
    with pytest.raises(pymysql.err.OperationalError, match="max_allowed_packet"):
        h.run("INSERT INTO big VALUES (%s, %s)", (2, "x" * (limit + 1)))
    assert mysql_db.sql("SELECT id FROM big") == ((1,),)


# --- connecting --------------------------------------------------------------------------------------


def test_connection_stored_in_the_metadata_database(mysql_db: MySqlDatabase, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("FLUX_CONN_LOCAL_MYSQL")
    add_connection(ConnectionInfo(conn_id="stored", conn_type="mysql", host="127.0.0.1", port=3306,
                                  login="root", schema=mysql_db.name, extra={"charset": "utf8mb4"}))
    assert hook("stored").get_first("SELECT DATABASE(), @@character_set_client") == (mysql_db.name, "utf8mb4")


def test_wrong_password_names_connection_and_host_never_the_password(mysql_db: MySqlDatabase,
                                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FLUX_CONN_BAD_PASSWORD",
                       f"mysql://root:S3cret-pw@127.0.0.1:3306/{mysql_db.name}")
    with pytest.raises(HookError) as caught:
        hook("bad_password").get_records("SELECT 1")
    message = str(caught.value)
    assert "'bad_password'" in message and "127.0.0.1:3306" in message
    assert "Access denied" in message
    assert "S3cret-pw" not in message and "\n" not in message


def test_unreachable_server_fails_quickly_with_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    import socket

    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("FLUX_CONN_NOWHERE", f"mysql://root:pw@127.0.0.1:{port}/x?connect_timeout=2")
    h = hook("nowhere")
    expected = rf"cannot connect to mysql connection 'nowhere' at 127\.0\.0\.1:{port}: "
    with pytest.raises(HookError, match=expected):
        h.get_first("SELECT 1")
    assert h.test_connection()[0] is False


def test_test_connection(mysql_db: MySqlDatabase):
    assert hook().test_connection() == (True, "connection 'local_mysql' works")


def test_unknown_connection_id():
    from flux.exceptions import ConnectionNotFound

    with pytest.raises(ConnectionNotFound, match="'missing' not found"):
        hook("missing").get_records("SELECT 1")


def test_connection_of_another_type_is_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FLUX_CONN_PG", "postgres://u@127.0.0.1:5432/db")
    with pytest.raises(HookError, match="has type 'postgres'; MySqlHook needs a connection of type 'mysql'"):
        hook("pg").get_records("SELECT 1")


def test_extra_settings_become_driver_arguments(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FLUX_CONN_X", "mysql://u:p@db.example:3307/sales?connect_timeout=2.5&local_infile=yes"
                       "&ssl_ca=/certs/ca.pem&ssl_verify_identity=true&read_timeout=30")
    kwargs = hook("x").connect_kwargs()
    assert kwargs == {
        "host": "db.example", "port": 3307, "user": "u", "password": "p", "database": "sales",
        "charset": "utf8mb4", "connect_timeout": 2.5, "local_infile": True, "read_timeout": 30,
        "ssl_ca": "/certs/ca.pem", "ssl_verify_identity": True,
    }
    monkeypatch.setenv("FLUX_CONN_Y", "mysql://u@h/db?__extra__=" + json.dumps(
        {"ssl": {"cert": "/c.pem", "key": "/k.pem", "verify_cert": False}, "charset": "latin1"},
        separators=(",", ":")))
    kwargs = hook("y").connect_kwargs()
    assert kwargs["ssl_cert"] == "/c.pem" and kwargs["ssl_key"] == "/k.pem"
    assert kwargs["ssl_verify_cert"] is False and kwargs["charset"] == "latin1"
    assert kwargs["local_infile"] is False and kwargs["connect_timeout"] == 10.0


@pytest.mark.parametrize(("query", "message"), [
    ("connect_timeout=soon", "extra 'connect_timeout' must be a number of seconds"),
    ("connect_timeout=0", "extra 'connect_timeout' must be a number of seconds"),
    ("local_infile=maybe", "extra 'local_infile' must be true or false, not 'maybe'"),
    ("__extra__=%7B%22ssl%22%3A%20%22yes%22%7D", "extra 'ssl' must be an object"),
])
def test_bad_extra_values(query: str, message: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FLUX_CONN_BAD", f"mysql://root@127.0.0.1:3306/x?{query}")
    with pytest.raises(HookError, match=message):
        hook("bad").get_first("SELECT 1")


def test_required_tls_against_a_server_without_it(mysql_db: MySqlDatabase, monkeypatch: pytest.MonkeyPatch):
    if mysql_db.sql("SELECT @@have_ssl")[0][0] == "YES":
        pytest.skip("this server offers TLS")
    monkeypatch.setenv("FLUX_CONN_TLS", mysql_db.uri(ssl_verify_cert="true"))
    with pytest.raises(HookError, match=r"'tls' at 127\.0\.0\.1:3306: .*SSL is required"):
        hook("tls").get_first("SELECT 1")


def test_unknown_extra_keys_are_reported_in_the_log(mysql_db: MySqlDatabase, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture):
    monkeypatch.setenv("FLUX_CONN_TYPO", mysql_db.uri(conect_timeout="3"))
    assert hook("typo").get_first("SELECT 1") == (1,)
    assert "extra key(s) conect_timeout are not used by MySqlHook" in caplog.text
