"""Transfers on MariaDB: MySqlToMySqlOperator (and core's DbApiToDbApiTransfer under it),
MySqlToCsvOperator and CsvToMySqlOperator, through the real task runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from flux.dag import DAG
from flux.exceptions import DagDefinitionError
from flux.state import State
from flux.taskrunner import run_task_instance

from .conftest import DATE, MySqlDatabase, read_log

EMOJI = "🚀 ☃"


def run(task):
    result = run_task_instance(task, DATE)
    return result, read_log(result.log_path)


def in_dag(factory, **kwargs):
    with DAG("transfers", start_date=DATE):
        return factory(**kwargs)


@pytest.fixture
def source(mysql_db: MySqlDatabase) -> MySqlDatabase:
    mysql_db.sql("CREATE TABLE orders (id INT PRIMARY KEY, label VARCHAR(20), amount DECIMAL(8, 2), "
                 "day DATE, note TEXT NULL)")
    rows = ", ".join(f"({i}, 'order {i}', {i}.25, '2024-03-0{1 + i % 2}', "
                     f"{'NULL' if i % 3 == 0 else repr(EMOJI)})" for i in range(1, 26))
    mysql_db.sql(f"INSERT INTO orders VALUES {rows}")
    return mysql_db


@pytest.fixture
def target(other_db: MySqlDatabase) -> MySqlDatabase:
    other_db.sql("CREATE TABLE orders (id INT PRIMARY KEY, label VARCHAR(20), amount DECIMAL(8, 2), "
                 "day DATE, note TEXT NULL, loaded_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)")
    return other_db


def mysql_to_mysql(**kwargs):
    from flux.operators import MySqlToMySqlOperator

    kwargs.setdefault("task_id", "copy")
    kwargs.setdefault("source_mysql_dbid", "local_mysql")
    kwargs.setdefault("destination_mysql_dbid", "other_mysql")
    kwargs.setdefault("destination_table", "orders")
    return in_dag(MySqlToMySqlOperator, **kwargs)


def test_copies_between_databases_in_batches_by_column_name(source: MySqlDatabase, target: MySqlDatabase):
    task = mysql_to_mysql(sql="SELECT id, label, amount, day, note FROM orders WHERE day = '{{ ds }}'",
                          batch_size=4)
    result, log = run(task)
    assert result.state == State.SUCCESS, log
    assert result.return_value == 12
    assert "Transferred 12 row(s) into orders" in log
    assert target.sql("SELECT id, label, amount, day, note FROM orders ORDER BY id") == source.sql(
        "SELECT id, label, amount, day, note FROM orders WHERE day = '2024-03-01' ORDER BY id")
    assert target.sql("SELECT COUNT(*) FROM orders WHERE note = %s", (EMOJI,)) == ((8,),)


def test_preoperator_inserts_and_postoperator_are_one_transaction(source: MySqlDatabase,
                                                                  target: MySqlDatabase):
    target.sql("INSERT INTO orders (id, label) VALUES (1, 'old one'), (100, 'unrelated')")
    # The copy itself fails on the duplicate id 1: the preoperator's DELETE must be undone too.
    failing = mysql_to_mysql(sql="SELECT id, label FROM orders",
                             preoperator="DELETE FROM orders WHERE id = 100",
                             postoperator="UPDATE orders SET label = 'post' WHERE id = 2")
    result, log = run(failing)
    assert result.state == State.FAILED
    assert "MySQL error 1062: Duplicate entry '1'" in log
    assert target.sql("SELECT id, label FROM orders ORDER BY id") == ((1, "old one"), (100, "unrelated"))
    working = mysql_to_mysql(task_id="copy2", sql="SELECT id, label FROM orders",
                             preoperator="DELETE FROM orders",
                             postoperator="UPDATE orders SET label = 'post' WHERE id = 2")
    result, log = run(working)
    assert result.state == State.SUCCESS, log
    assert target.sql("SELECT COUNT(*), MIN(id), MAX(id) FROM orders") == ((25, 1, 25),)
    assert target.sql("SELECT label FROM orders WHERE id = 2") == (("post",),)


@pytest.mark.parametrize(("on_duplicate", "expected"), [
    ("replace", ((1, "order 1"), (2, "order 2"), (3, "order 3"))),
    ("ignore", ((1, "kept"), (2, "order 2"), (3, "order 3"))),
])
def test_on_duplicate(on_duplicate: str, expected, source: MySqlDatabase, target: MySqlDatabase):
    target.sql("INSERT INTO orders (id, label) VALUES (1, 'kept')")
    task = mysql_to_mysql(sql="SELECT id, label FROM orders WHERE id <= 3", on_duplicate=on_duplicate)
    result, log = run(task)
    assert result.state == State.SUCCESS, log
    assert target.sql("SELECT id, label FROM orders ORDER BY id") == expected


def test_positional_columns_explicit_columns_and_mismatches(source: MySqlDatabase, target: MySqlDatabase):
    target.sql("CREATE TABLE pairs (a INT, b VARCHAR(20))")
    positional = mysql_to_mysql(task_id="pos", sql="SELECT id * 10, UPPER(label) FROM orders WHERE id = 1",
                                destination_table="pairs")
    explicit = mysql_to_mysql(task_id="named", sql="SELECT label, id FROM orders WHERE id = 2",
                              destination_table="pairs", destination_columns=["b", "a"])
    mismatch = mysql_to_mysql(task_id="mismatch", sql="SELECT 1, 2, 3", destination_table="pairs")
    assert run(positional)[0].state == State.SUCCESS
    assert run(explicit)[0].state == State.SUCCESS
    assert target.sql("SELECT a, b FROM pairs ORDER BY a") == ((2, "order 2"), (10, "ORDER 1"))
    result, log = run(mismatch)
    assert result.state == State.FAILED
    assert "are not columns of pairs (a, b), and their number differs" in log


def test_same_connection_copy_and_a_query_that_is_not_one(source: MySqlDatabase):
    source.sql("CREATE TABLE archive LIKE orders")
    task = mysql_to_mysql(sql="SELECT * FROM orders", destination_mysql_dbid="local_mysql",
                          destination_table="archive")
    assert run(task)[0].state == State.SUCCESS
    assert source.sql("SELECT COUNT(*) FROM archive") == ((25,),)
    bad = mysql_to_mysql(task_id="bad", sql="DELETE FROM orders WHERE id = 0",
                         destination_mysql_dbid="local_mysql", destination_table="archive")
    result, log = run(bad)
    assert result.state == State.FAILED
    assert "the source SQL returned no rows to copy (it is not a query)" in log


def test_invalid_arguments_are_refused_when_the_dag_is_defined():
    with pytest.raises(DagDefinitionError, match="on_duplicate must be one of"):
        mysql_to_mysql(sql="SELECT 1", on_duplicate="merge")
    with pytest.raises(DagDefinitionError, match="batch_size must be a whole number"):
        mysql_to_mysql(sql="SELECT 1", batch_size=0)


def test_generic_dbapi_transfer_picks_the_hook_by_connection_type(source: MySqlDatabase,
                                                                   target: MySqlDatabase):
    from flux.transfers import DbApiToDbApiTransfer

    task = in_dag(DbApiToDbApiTransfer, task_id="generic", sql="SELECT id, label FROM orders WHERE id < %s",
                  parameters=(4,), source_conn_id="local_mysql", destination_conn_id="other_mysql",
                  destination_table="orders")
    result, log = run(task)
    assert result.state == State.SUCCESS, log
    assert target.sql("SELECT id FROM orders ORDER BY id") == ((1,), (2,), (3,))


def test_large_transfer_streams(source: MySqlDatabase, target: MySqlDatabase):
    source.sql("CREATE TABLE digits (d INT)")
    source.sql("INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)")
    source.sql("CREATE TABLE wide (id INT PRIMARY KEY, label VARCHAR(20))")
    source.sql("INSERT INTO wide SELECT a.d + 10 * b.d + 100 * c.d + 1000 * d.d + 10000 * e.d, 'x' "
               "FROM digits a, digits b, digits c, digits d, digits e")
    target.sql("CREATE TABLE wide (id INT PRIMARY KEY, label VARCHAR(20))")
    task = mysql_to_mysql(sql="SELECT * FROM wide", destination_table="wide", batch_size=1000)
    result, log = run(task)
    assert result.state == State.SUCCESS, log
    assert target.sql("SELECT COUNT(*), SUM(id) FROM wide") == ((100_000, sum(range(100_000))),)
    assert "100000 row(s) read so far" in log


# --- CSV -------------------------------------------------------------------------------------------


def test_mysql_to_csv_then_csv_to_mysql(source: MySqlDatabase, target: MySqlDatabase, tmp_path: Path):
    from flux.operators import CsvToMySqlOperator, MySqlToCsvOperator

    path = str(tmp_path / "out" / "{{ ds }}" / "orders.csv")
    extract = in_dag(MySqlToCsvOperator, task_id="extract", mysql_dbid="local_mysql", path=path,
                     sql="SELECT id, label, amount, day, note FROM orders WHERE id <= %s", parameters=[5])
    result, log = run(extract)
    assert result.state == State.SUCCESS, log
    written = tmp_path / "out" / "2024-03-01" / "orders.csv"
    assert result.return_value == 5 and written.is_file()
    assert written.read_bytes().decode().splitlines()[:2] == [
        "id,label,amount,day,note", f"1,order 1,1.25,2024-03-02,{EMOJI}"]
    load = in_dag(CsvToMySqlOperator, task_id="load", mysql_dbid="other_mysql", table="orders",
                  path=str(tmp_path / "out" / "{{ ds }}" / "orders.csv"))
    result, log = run(load)
    assert result.state == State.SUCCESS, log
    assert result.return_value == 5
    assert target.sql("SELECT id, label, amount, day, note FROM orders ORDER BY id") == source.sql(
        "SELECT id, label, amount, day, note FROM orders WHERE id <= 5 ORDER BY id")


def test_csv_to_mysql_with_columns_and_a_mismatching_file(target: MySqlDatabase, tmp_path: Path):
    from flux.operators import CsvToMySqlOperator

    good = tmp_path / "good.csv"
    good.write_text("7,seven\n8,eight\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("id,colour\n9,blue\n")
    task = in_dag(CsvToMySqlOperator, task_id="load", mysql_dbid="other_mysql", table="orders",
                  path=str(good), columns=["id", "label"], header=False)
    assert run(task)[0].state == State.SUCCESS
    assert target.sql("SELECT id, label FROM orders ORDER BY id") == ((7, "seven"), (8, "eight"))
    mismatch = in_dag(CsvToMySqlOperator, task_id="mismatch", mysql_dbid="other_mysql", table="orders",
                      path=str(bad))
    result, log = run(mismatch)
    assert result.state == State.FAILED
    assert "no column 'colour' in the table" in log and "nothing was loaded" in log
    assert target.sql("SELECT COUNT(*) FROM orders") == ((2,),)


def test_mysql_to_csv_into_an_unwritable_place(source: MySqlDatabase, tmp_path: Path):
    from flux.operators import MySqlToCsvOperator

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    task = in_dag(MySqlToCsvOperator, task_id="extract", mysql_dbid="local_mysql", sql="SELECT 1",
                  path=str(blocker / "x.csv"))
    result, log = run(task)
    assert result.state == State.FAILED
    assert "cannot create the folder of" in log and "Traceback" not in log
