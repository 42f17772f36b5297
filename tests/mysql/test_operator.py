"""MySqlOperator through the real task runner on MariaDB: the log, templates, .sql files,
parameters, transactions, and failures (syntax errors, unreachable servers)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from flux.dag import DAG
from flux.exceptions import DagDefinitionError
from flux.state import State
from flux.taskrunner import run_task_instance

from .conftest import DATE, MySqlDatabase, read_log


def run(task, date=DATE):
    result = run_task_instance(task, date)
    return result, read_log(result.log_path)


def make_dag(dag_id: str = "mysql_dag", **kwargs) -> DAG:
    return DAG(dag_id, start_date=DATE, **kwargs)


@pytest.fixture
def tmp_table(mysql_db: MySqlDatabase) -> MySqlDatabase:
    mysql_db.sql("CREATE TABLE tmp (v VARCHAR(100))")
    return mysql_db


def test_registered_with_the_seeds_template_settings():
    from flux.operators import MySqlOperator
    from flux.plugins import get_plugin_manager

    assert MySqlOperator.__module__ == "flux_mysql.operators"
    assert MySqlOperator.template_fields == ("sql",)
    assert MySqlOperator.template_ext == (".sql",)
    names = set(get_plugin_manager().contributions("operators"))
    assert {"MySqlOperator", "MySqlSensor", "MySqlToMySqlOperator", "MySqlToCsvOperator",
            "CsvToMySqlOperator"} <= names


def test_logs_the_rendered_sql_and_runs_it(tmp_table: MySqlDatabase):
    from flux.operators import MySqlOperator

    with make_dag():
        task = MySqlOperator(task_id="insert", sql="\nINSERT INTO tmp\nSELECT '{{ ds }}';\n",
                             mysql_dbid="local_mysql")
    result, log = run(task)
    assert result.state == State.SUCCESS, log
    assert "INFO - Executing: \nINSERT INTO tmp\nSELECT '2024-03-01';\n" in log
    assert tmp_table.sql("SELECT v FROM tmp") == (("2024-03-01",),)


def test_mysql_dbid_from_default_args_and_the_hook_is_made_only_when_running(tmp_table: MySqlDatabase,
                                                                            monkeypatch: pytest.MonkeyPatch):
    from flux.operators import MySqlOperator

    # The connection does not even exist while the DAG is defined: nothing connects then.
    monkeypatch.delenv("FLUX_CONN_LOCAL_MYSQL")
    with make_dag(default_args={"owner": "max", "mysql_dbid": "local_mysql"}):
        task = MySqlOperator(task_id="insert", sql="INSERT INTO tmp VALUES ('x')")
    assert task.mysql_dbid == "local_mysql" and task.owner == "max"
    assert not any("hook" in name.lower() for name in vars(task))
    monkeypatch.setenv("FLUX_CONN_LOCAL_MYSQL", tmp_table.uri())
    result, log = run(task)
    assert result.state == State.SUCCESS, log
    assert tmp_table.sql("SELECT v FROM tmp") == (("x",),)


def test_sql_file_list_and_parameters(tmp_table: MySqlDatabase, tmp_path: Path):
    from flux.operators import MySqlOperator

    (tmp_path / "load.sql").write_text("INSERT INTO tmp VALUES ('{{ ds_nodash }}');\n"
                                       "INSERT INTO tmp VALUES (%(tag)s);\n")
    with make_dag(template_searchpath=[str(tmp_path)]):
        from_file = MySqlOperator(task_id="from_file", sql="load.sql", mysql_dbid="local_mysql",
                                  parameters={"tag": "param"})
        as_list = MySqlOperator(task_id="as_list", mysql_dbid="local_mysql",
                                sql=["INSERT INTO tmp VALUES ('{{ task.task_id }}')",
                                     "DELETE FROM tmp WHERE v = 'param'"])
    result, log = run(from_file)
    assert result.state == State.SUCCESS, log
    assert "Executing: INSERT INTO tmp VALUES ('20240301');" in log
    assert tmp_table.sql("SELECT v FROM tmp ORDER BY v") == (("20240301",), ("param",))
    result, log = run(as_list)
    assert result.state == State.SUCCESS, log
    assert tmp_table.sql("SELECT v FROM tmp ORDER BY v") == (("20240301",), ("as_list",))


def test_hostile_parameter_is_stored_literally(tmp_table: MySqlDatabase):
    from flux.operators import MySqlOperator

    hostile = "'; DROP TABLE tmp;--"
    with make_dag():
        task = MySqlOperator(task_id="insert", sql="INSERT INTO tmp VALUES (%s)", parameters=[hostile],
                             mysql_dbid="local_mysql")
    result, log = run(task)
    assert result.state == State.SUCCESS, log
    assert tmp_table.sql("SELECT v FROM tmp") == ((hostile,),)


def test_autocommit_off_makes_the_statements_one_transaction(mysql_db: MySqlDatabase):
    from flux.operators import MySqlOperator

    mysql_db.sql("CREATE TABLE t (id INT PRIMARY KEY)")
    with make_dag():
        task = MySqlOperator(task_id="pair", sql="INSERT INTO t VALUES (1); INSERT INTO t VALUES (1);",
                             mysql_dbid="local_mysql", autocommit=False)
    result, log = run(task)
    assert result.state == State.FAILED
    assert "MySQL error 1062: Duplicate entry '1' for key 'PRIMARY'" in log
    assert mysql_db.sql("SELECT COUNT(*) FROM t") == ((0,),)


def test_syntax_error_fails_the_task_with_the_servers_message(tmp_table: MySqlDatabase):
    from flux.operators import MySqlOperator

    with make_dag():
        task = MySqlOperator(task_id="typo", sql="INSRT INTO tmp VALUES (1)", mysql_dbid="local_mysql")
    result, log = run(task)
    assert result.state == State.FAILED
    failure = [line for line in log.splitlines() if "Task failed" in line]
    assert len(failure) == 1, log
    assert ("TaskFailed: task 'typo' on 'local_mysql': MySQL error 1064: You have an error in your SQL "
            "syntax") in failure[0]
    assert "near 'INSRT INTO tmp VALUES (1)'" in failure[0]
    assert "Traceback" not in log


def test_unreachable_server_and_wrong_password_fail_with_one_masked_line(mysql_db: MySqlDatabase,
                                                                        monkeypatch: pytest.MonkeyPatch):
    from flux.operators import MySqlOperator

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("FLUX_CONN_NOWHERE", f"mysql://root:Hush-123@127.0.0.1:{port}/x?connect_timeout=2")
    monkeypatch.setenv("FLUX_CONN_BADPW", f"mysql://root:Hush-456@127.0.0.1:3306/{mysql_db.name}")
    with make_dag():
        unreachable = MySqlOperator(task_id="unreachable", sql="SELECT 1", mysql_dbid="nowhere")
        denied = MySqlOperator(task_id="denied", sql="SELECT 1", mysql_dbid="badpw")
    result, log = run(unreachable)
    assert result.state == State.FAILED
    assert f"cannot connect to mysql connection 'nowhere' at 127.0.0.1:{port}" in log
    result, log = run(denied)
    assert result.state == State.FAILED
    assert "cannot connect to mysql connection 'badpw' at 127.0.0.1:3306" in log and "Access denied" in log
    assert "Hush-" not in log and "Traceback" not in log


def test_unknown_connection_fails_the_task(mysql_db: MySqlDatabase):
    from flux.operators import MySqlOperator

    with make_dag():
        task = MySqlOperator(task_id="lost", sql="SELECT 1", mysql_dbid="no_such_conn")
    result, log = run(task)
    assert result.state == State.FAILED
    assert "connection 'no_such_conn' not found" in log and "Traceback" not in log


@pytest.mark.parametrize("sql", ["", "   ", [], [1, 2], None])
def test_empty_or_invalid_sql_is_refused_when_the_dag_is_defined(sql):
    from flux.operators import MySqlOperator

    with pytest.raises(DagDefinitionError, match="task 'bad': sql"):
        MySqlOperator(task_id="bad", sql=sql, mysql_dbid="local_mysql")


def test_undefined_template_variable_fails_before_connecting(tmp_table: MySqlDatabase):
    from flux.operators import MySqlOperator

    with make_dag():
        task = MySqlOperator(task_id="typo", sql="INSERT INTO tmp VALUES ('{{ dss }}')",
                             mysql_dbid="local_mysql")
    result, log = run(task)
    assert result.state == State.FAILED
    assert "'dss' is undefined" in log
    assert tmp_table.sql("SELECT COUNT(*) FROM tmp") == ((0,),)


def test_a_timed_out_statement_is_stopped_on_the_server_too(mysql_db: MySqlDatabase):
    """The task gives up at its execution_timeout; without KILL QUERY the server would go on
    running the statement for the full 30 s."""
    import time
    import uuid
    from datetime import timedelta

    from flux.operators import MySqlOperator

    marker = f"flux-kill-{uuid.uuid4().hex[:8]}"
    with make_dag():
        task = MySqlOperator(task_id="slow", sql=f"SELECT SLEEP(30) /* {marker} */",
                             mysql_dbid="local_mysql", execution_timeout=timedelta(seconds=1))
    began = time.monotonic()
    result, log = run(task)
    assert result.state == State.FAILED, log
    assert time.monotonic() - began < 15, log
    assert "TaskTimeout" in log
    assert "Stopped the statement of server thread" in log


    def running() -> tuple[tuple[int, ...], ...]:
        return mysql_db.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s "
                            "AND COMMAND = 'Query' AND ID <> CONNECTION_ID()", (f"%{marker}%",))

    deadline = time.monotonic() + 5  # KILL QUERY is asynchronous: the statement ends soon after
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running() == ()
