"""``macros.mysql``: max_value and latest_partition on MariaDB, called directly and from templates."""

from __future__ import annotations

import pymysql
import pytest

from flux.dag import DAG
from flux.exceptions import HookError
from flux.state import State
from flux.taskrunner import run_task_instance

from .conftest import DATE, MySqlDatabase, read_log


@pytest.fixture
def partitioned(mysql_db: MySqlDatabase) -> MySqlDatabase:
    mysql_db.sql(
        "CREATE TABLE events (day DATE NOT NULL, n INT) PARTITION BY RANGE COLUMNS (day) ("
        "PARTITION p20240301 VALUES LESS THAN ('2024-03-02'), "
        "PARTITION p20240302 VALUES LESS THAN ('2024-03-03'), "
        "PARTITION pmax VALUES LESS THAN (MAXVALUE))"
    )
    mysql_db.sql("INSERT INTO events VALUES ('2024-03-01', 5), ('2024-03-02', 7)")
    return mysql_db


def test_registered_as_the_mysql_namespace():
    from flux.macros import build_namespace
    from flux_mysql import macros

    assert build_namespace().mysql is macros


def test_max_value(partitioned: MySqlDatabase):
    from flux_mysql.macros import max_value

    assert max_value("events", "n", "local_mysql") == 7
    assert max_value(f"{partitioned.name}.events", "day", "local_mysql").isoformat() == "2024-03-02"
    partitioned.sql("CREATE TABLE empty_one (n INT)")
    assert max_value("empty_one", "n", "local_mysql") is None
    with pytest.raises(pymysql.MySQLError, match="Unknown column"):
        max_value("events", "n`; DROP TABLE events; --", "local_mysql")
    assert partitioned.sql("SELECT COUNT(*) FROM events") == ((2,),)


def test_latest_partition(partitioned: MySqlDatabase):
    from flux_mysql.macros import latest_partition

    assert latest_partition("events", "local_mysql") == "p20240302"
    assert latest_partition(f"{partitioned.name}.events", "local_mysql") == "p20240302"
    partitioned.sql("CREATE TABLE by_hash (id INT) PARTITION BY HASH (id) PARTITIONS 3")
    assert latest_partition("by_hash", "local_mysql") == "p2"
    partitioned.sql("CREATE TABLE only_max (day DATE) PARTITION BY RANGE COLUMNS (day) "
                    "(PARTITION pall VALUES LESS THAN (MAXVALUE))")
    assert latest_partition("only_max", "local_mysql") == "pall"


def test_latest_partition_of_a_plain_or_missing_table(partitioned: MySqlDatabase):
    from flux_mysql.macros import latest_partition

    partitioned.sql("CREATE TABLE plain (id INT)")
    with pytest.raises(HookError, match="table 'plain' on 'local_mysql' is not partitioned"):
        latest_partition("plain", "local_mysql")
    with pytest.raises(HookError, match="table 'ghost' does not exist on 'local_mysql'"):
        latest_partition("ghost", "local_mysql")


def test_macros_in_a_mysql_operator_template(partitioned: MySqlDatabase):
    from flux.operators import MySqlOperator

    partitioned.sql("CREATE TABLE watermark (max_n INT, part VARCHAR(64))")
    with DAG("macros", start_date=DATE):
        task = MySqlOperator(
            task_id="mark", mysql_dbid="local_mysql",
            sql="INSERT INTO watermark VALUES ({{ macros.mysql.max_value('events', 'n', 'local_mysql') }}, "
                "'{{ macros.mysql.latest_partition('events', 'local_mysql') }}')",
        )
    result = run_task_instance(task, DATE)
    log = read_log(result.log_path)
    assert result.state == State.SUCCESS, log
    assert "Executing: INSERT INTO watermark VALUES (7, 'p20240302')" in log
    assert partitioned.sql("SELECT max_n, part FROM watermark") == ((7, "p20240302"),)
