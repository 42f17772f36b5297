"""examples/dags/test_dag.py (the seed's ``test_dag``) backfilled with the ``flux`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import MySqlDatabase

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dags" / "test_dag.py"


def flux(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flux.cli.main", *args], env=env, text=True,
                          capture_output=True, timeout=120, cwd=cwd)


def test_backfill_truncates_then_inserts(mysql_db: MySqlDatabase, flux_env: Path):
    mysql_db.sql("CREATE TABLE tmp (v INT)")
    mysql_db.sql("INSERT INTO tmp VALUES (7), (8)")
    env = {**os.environ, "FLUX_HOME": str(flux_env)}
    show = flux("dags", "show", "test_dag", "-sd", str(EXAMPLE), env=env, cwd=flux_env)
    assert show.returncode == 0, show.stderr
    assert show.stdout.splitlines()[:2] == ["<Task(MySqlOperator): mysql_second>",
                                           "    <Task(MySqlOperator): mysql_fisrt>"]
    done = flux("backfill", "test_dag", "-sd", str(EXAMPLE), "-s", "2014-09-01", "-e", "2014-09-01",
                env=env, cwd=flux_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert mysql_db.sql("SELECT v FROM tmp") == ((1,),)
    log = flux_env / "logs" / "test_dag" / "mysql_second" / "2014-09-01T00:00:00" / "1.log"
    assert "Executing: \nINSERT INTO tmp\nSELECT 1;\n" in log.read_text()
