"""MySqlSensor on MariaDB: what counts as yes, the core sensor options, and failing queries."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from flux.dag import DAG
from flux.state import State
from flux.taskrunner import run_task_instance

from .conftest import DATE, MySqlDatabase, read_log


def sensor(**kwargs):
    from flux.operators import MySqlSensor

    kwargs.setdefault("mysql_dbid", "local_mysql")
    kwargs.setdefault("poke_interval", 0.05)
    kwargs.setdefault("timeout", 0.2)
    with DAG("sensing", start_date=DATE):
        return MySqlSensor(task_id=kwargs.pop("task_id", "wait"), **kwargs)


@pytest.fixture
def events(mysql_db: MySqlDatabase) -> MySqlDatabase:
    mysql_db.sql("CREATE TABLE events (day DATE, n INT)")
    return mysql_db


@pytest.mark.parametrize(("value", "expected"), [
    (None, False), (0, False), (0.0, False), (Decimal("0.00"), False), ("", False), ("0", False),
    (b"0", False), (False, False),
    (1, True), (Decimal("0.01"), True), ("yes", True), ("00", True), (b"x", True), (True, True),
])
def test_truthiness_of_the_first_cell(value, expected):
    from flux_mysql.sensors import is_truthy

    assert is_truthy(value) is expected


def test_succeeds_when_the_first_cell_is_truthy(events: MySqlDatabase):
    events.sql("INSERT INTO events VALUES ('2024-03-01', 3)")
    task = sensor(sql="SELECT COUNT(*) FROM events WHERE day = '{{ ds }}'")
    result = run_task_instance(task, DATE)
    log = read_log(result.log_path)
    assert result.state == State.SUCCESS, log
    assert "Poking: SELECT COUNT(*) FROM events WHERE day = '2024-03-01'" in log


def test_keeps_poking_until_a_row_arrives(events: MySqlDatabase):
    task = sensor(sql="SELECT n FROM events WHERE day = %s", parameters=["2024-03-01"],
                  poke_interval=0.05, timeout=60)
    arrived = threading.Timer(0.3, events.sql, ("INSERT INTO events VALUES ('2024-03-01', 1)",))
    arrived.start()
    try:
        result = run_task_instance(task, DATE)
    finally:
        arrived.cancel()
    log = read_log(result.log_path)
    assert result.state == State.SUCCESS, log
    assert "The query returned no row" in log
    assert "Condition met after" in log


def test_times_out_then_soft_fail_skips(events: MySqlDatabase):
    events.sql("INSERT INTO events VALUES ('2024-03-01', 0)")
    failed = run_task_instance(sensor(task_id="hard", sql="SELECT n FROM events"), DATE)
    assert failed.state == State.FAILED
    assert "timed out" in read_log(failed.log_path)
    skipped = run_task_instance(sensor(task_id="soft", sql="SELECT n FROM events", soft_fail=True), DATE)
    assert skipped.state == State.SKIPPED


def test_reschedule_mode_gives_the_slot_back(events: MySqlDatabase):
    result = run_task_instance(sensor(sql="SELECT n FROM events", mode="reschedule", timeout=3600), DATE)
    assert result.state == State.UP_FOR_RESCHEDULE


def test_a_failing_query_fails_the_sensor_at_once(events: MySqlDatabase):
    result = run_task_instance(sensor(sql="SELECT n FROM no_such_table", timeout=3600), DATE)
    log = read_log(result.log_path)
    assert result.state == State.FAILED
    assert "MySQL error 1146: Table '" in log and "no_such_table' doesn't exist" in log
    assert "Traceback" not in log
