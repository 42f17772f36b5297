"""The seed tutorial's MySQL section, end to end, with the metadata database on MariaDB.

As in the tutorial, Flux's own tables and the table ``tmp`` live in one MySQL database, reached
through the connection ``local_mysql`` stored in Flux's metadata. The tutorial's database is named
``flux``; here each test makes its own, so that name is the only change made to the snippets.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import HOST, PORT, USER, MySqlDatabase

FLUX_TABLES = {"connection", "dag", "dag_run", "task_instance", "job", "log", "import_error"}


@pytest.fixture
def seed_database(mysql_db: MySqlDatabase, monkeypatch: pytest.MonkeyPatch) -> MySqlDatabase:
    """The test's database as Flux's metadata database, holding ``tmp`` and ``local_mysql``."""
    from flux import config, db
    from flux.connections import ConnectionInfo, add_connection

    monkeypatch.setenv("FLUX_DATABASE_URL", mysql_db.url)
    monkeypatch.delenv("FLUX_CONN_LOCAL_MYSQL")
    config.reset_config()
    db.dispose_all()
    add_connection(ConnectionInfo(conn_id="local_mysql", conn_type="mysql", host=HOST, port=PORT,
                                  login=USER, schema=mysql_db.name))
    mysql_db.sql("CREATE TABLE tmp (v INT)")
    return mysql_db


def test_seed_mysql_section(seed_database: MySqlDatabase, caplog: pytest.LogCaptureFixture,
                            capsys: pytest.CaptureFixture[str]):
    caplog.set_level(logging.DEBUG)
    schema = seed_database.name

    # --- Hooks ---------------------------------------------------------------------------------
    from flux.hooks import MySqlHook
    mysql_hook = MySqlHook(mysql_dbid='local_mysql')
    sql = """
    SELECT table_schema, table_name
    FROM information_schema.tables
    WHERE table_schema = 'flux'
    """.replace("'flux'", f"'{schema}'")
    records = mysql_hook.get_records(sql)

    assert isinstance(records, tuple) and all(isinstance(row, tuple) for row in records)
    assert {row[0] for row in records} == {schema}
    assert FLUX_TABLES | {"tmp"} <= {row[1] for row in records}

    # --- Operators -----------------------------------------------------------------------------
    from datetime import datetime

    from flux.operators import MySqlOperator

    sql = """
    INSERT INTO tmp
    SELECT 1;
    """
    mysql_op = MySqlOperator(task_id='test_task3', sql=sql, mysql_dbid='local_mysql', owner='max')
    mysql_op.run(start_date=datetime(2014, 9, 15), end_date=datetime(2014, 9, 17))

    messages = [record.getMessage() for record in caplog.records]
    assert messages.count(f"Executing: {sql}") == 3
    for day in (15, 16, 17):
        assert f"Executing <Task(MySqlOperator): test_task3> for 2014-09-{day} 00:00:00" in messages
    assert sum("New run starting @" in message for message in messages) == 3
    assert seed_database.sql("SELECT COUNT(*) FROM tmp") == ((3,),)

    # "If you were to re-run this, it would say it already succeeded."
    caplog.clear()
    mysql_op.run(start_date=datetime(2014, 9, 15), end_date=datetime(2014, 9, 17))
    assert sum("already succeeded" in record.getMessage() for record in caplog.records) == 3
    assert not any(record.getMessage().startswith("Executing: ") for record in caplog.records)
    assert seed_database.sql("SELECT COUNT(*) FROM tmp") == ((3,),)
    assert seed_database.sql(
        "SELECT COUNT(*) FROM task_instance WHERE task_id = 'test_task3' AND state = 'success'") == ((3,),)

    # --- Creating a DAG ------------------------------------------------------------------------
    from flux import DAG

    # Setting some default operator parameters
    default_args = {
        'owner': 'max',
        'mysql_dbid': 'local_mysql',
    }

    # Initializing a directed acyclic graph
    dag = DAG(dag_id='test_dag')

    # MySQL Operator
    sql = "TRUNCATE TABLE tmp;"
    mysql_fisrt = MySqlOperator(task_id='mysql_fisrt', sql=sql, **default_args)
    dag.add_task(mysql_fisrt)

    sql = """
    INSERT INTO tmp
    SELECT 1;
    """
    mysql_second = MySqlOperator(task_id='mysql_second', sql=sql, **default_args)
    dag.add_task(mysql_second)
    mysql_second.set_upstream(mysql_fisrt)

    capsys.readouterr()
    dag.tree_view()
    assert capsys.readouterr().out == (
        "<Task(MySqlOperator): mysql_second>\n"
        "    <Task(MySqlOperator): mysql_fisrt>\n"
    )
    dag.run(start_date=datetime(2014, 9, 1), end_date=datetime(2014, 9, 1))

    # The truncate ran first, then the insert: one row is left.
    assert seed_database.sql("SELECT v FROM tmp") == ((1,),)
    assert seed_database.sql(
        "SELECT task_id, state FROM task_instance WHERE dag_id = 'test_dag' ORDER BY task_id"
    ) == (("mysql_fisrt", "success"), ("mysql_second", "success"))


SEED_SCRIPT = '''
from importlib import reload  # Python 3: reload is no longer a builtin

# A little bit of setup
import logging
reload(logging)
logging.basicConfig(format='%(levelname)s:%(message)s', level=logging.DEBUG, datefmt='%I:%M:%S')

from flux.hooks import MySqlHook
mysql_hook = MySqlHook(mysql_dbid='local_mysql')
sql = """
SELECT table_schema, table_name
FROM information_schema.tables
WHERE table_schema = 'flux'
"""
print(mysql_hook.get_records(sql))

from flux.operators import MySqlOperator
from datetime import datetime, timedelta

sql = """
INSERT INTO tmp
SELECT 1;
"""
mysql_op = MySqlOperator(task_id='test_task3', sql=sql, mysql_dbid='local_mysql', owner='max')
mysql_op.run(start_date=datetime(2014, 9, 15), end_date=datetime(2014, 9, 17))
'''


def test_seed_snippets_as_a_script_log_in_the_seeds_format(seed_database: MySqlDatabase, flux_env: Path,
                                                           tmp_path: Path):
    script = tmp_path / "seed_mysql.py"
    script.write_text(textwrap.dedent(SEED_SCRIPT).replace("'flux'", f"'{seed_database.name}'"))
    env = {**os.environ, "FLUX_HOME": str(flux_env), "FLUX_DATABASE_URL": seed_database.url}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"('{seed_database.name}', 'task_instance')" in done.stdout
    assert done.stderr.count("INFO:Executing: \nINSERT INTO tmp\nSELECT 1;\n") == 3
    assert "INFO:Executing <Task(MySqlOperator): test_task3> for 2014-09-15 00:00:00" in done.stderr
    assert "INFO:\n" + "-" * 80 + "\nNew run starting @" in done.stderr
    assert seed_database.sql("SELECT COUNT(*) FROM tmp") == ((3,),)
