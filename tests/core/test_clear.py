"""Clearing task instances (``dag.clear``, ``flux clear``): reset to no state, run again with a new
try; the selection options; a cleared running instance is stopped and run again."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from flux import DAG
from flux.builtin.operators import PythonOperator
from flux.dates import UTC
from flux.db import session_scope
from flux.models import AuditLog, DagRun, TaskInstance
from flux.state import DagRunState, State

DAY1 = datetime(2024, 1, 1, tzinfo=UTC)
DAY2, DAY3 = DAY1 + timedelta(days=1), DAY1 + timedelta(days=2)


def fail() -> None:
    raise ValueError("boom")


def make_dag(dag_id: str) -> DAG:
    """extract >> transform >> load, plus an independent ``audit`` that fails."""
    with DAG(dag_id, start_date=DAY1, schedule_interval="@daily") as dag:
        extract = PythonOperator(task_id="extract", python_callable=lambda: 1, retries=2)
        transform = PythonOperator(task_id="transform", python_callable=lambda: 2)
        extract >> transform >> PythonOperator(task_id="load", python_callable=lambda: 3)
        PythonOperator(task_id="audit", python_callable=fail)
    return dag


def rows(dag_id: str) -> dict[tuple[str, datetime], TaskInstance]:
    with session_scope() as session:
        found = session.execute(select(TaskInstance).where(TaskInstance.dag_id == dag_id)).scalars()
        return {(ti.task_id, ti.execution_date): ti for ti in found}


def run_states(dag_id: str) -> list[str]:
    with session_scope() as session:
        return list(session.execute(select(DagRun.state).where(DagRun.dag_id == dag_id)
                                    .order_by(DagRun.execution_date)).scalars())


@pytest.fixture
def ran() -> DAG:
    """The DAG, backfilled for three days (audit failed, the rest succeeded)."""
    dag = make_dag("to_clear")
    result = dag.run(start_date=DAY1, end_date=DAY3, executor="local", parallelism=2)
    assert result.counts == {State.SUCCESS: 9, State.FAILED: 3}
    return dag


def test_clear_resets_to_no_state_and_a_second_backfill_runs_them_again(ran: DAG) -> None:
    cleared = ran.clear(start_date=DAY2, end_date=DAY2, task_regex="^(extract|transform|load)$")
    assert sorted(ti.task_id for ti in cleared) == ["extract", "load", "transform"]
    after = rows("to_clear")
    for task_id in ("extract", "transform", "load"):
        ti = after[(task_id, DAY2)]
        assert (ti.state, ti.try_number, ti.end_date, ti.note) == (None, 1, None, "cleared")
        assert after[(task_id, DAY1)].state == State.SUCCESS
    assert after[("extract", DAY2)].max_tries == 1 + 2  # the tries made plus a fresh set of retries
    assert run_states("to_clear") == [DagRunState.FAILED, DagRunState.RUNNING, DagRunState.FAILED]

    again = ran.run(start_date=DAY1, end_date=DAY3, executor="local", parallelism=2)
    assert again.ran == 12 and not again.nothing_to_do
    final = rows("to_clear")
    assert {(t, ti.state, ti.try_number) for (t, d), ti in final.items() if d == DAY2} == {
        ("extract", State.SUCCESS, 2), ("transform", State.SUCCESS, 2), ("load", State.SUCCESS, 2),
        ("audit", State.FAILED, 1)}
    assert {ti.try_number for (t, d), ti in final.items() if d != DAY2} == {1}
    assert final[("transform", DAY2)].start_date >= final[("extract", DAY2)].end_date


def test_clear_selects_by_failure_and_by_relatives(ran: DAG) -> None:
    failed = ran.clear(only_failed=True, dry_run=True)
    assert {(ti.task_id, ti.execution_date) for ti in failed} == {("audit", d) for d in (DAY1, DAY2, DAY3)}
    assert rows("to_clear")[("audit", DAY1)].state == State.FAILED  # a dry run changes nothing
    down = ran.clear(start_date=DAY1, end_date=DAY1, task_regex="^transform$",
                     include_downstream=True, dry_run=True)
    assert sorted(ti.task_id for ti in down) == ["load", "transform"]
    up = ran.clear(start_date=DAY1, end_date=DAY1, task_regex="^transform$",
                   include_upstream=True, dry_run=True)
    assert sorted(ti.task_id for ti in up) == ["extract", "transform"]
    assert len(ran.clear(only_failed=True)) == 3
    states = {k: ti.state for k, ti in rows("to_clear").items()}
    assert [states[("audit", d)] for d in (DAY1, DAY2, DAY3)] == [None, None, None]
    assert states[("extract", DAY1)] == State.SUCCESS
    assert run_states("to_clear") == [DagRunState.RUNNING] * 3


# --- the command -------------------------------------------------------------------------------

DAG_FILE = textwrap.dedent('''
    import time
    from datetime import datetime

    from flux import DAG
    from flux.operators import PythonOperator


    def nap():
        pass


    def slow_first_try(ti):
        if ti.try_number == 1:
            time.sleep(300)
        return ti.try_number


    with DAG("cleanable", start_date=datetime(2024, 1, 1), schedule_interval="@daily") as dag:
        PythonOperator(task_id="a", python_callable=nap) >> PythonOperator(task_id="b",
                                                                           python_callable=nap)

    with DAG("cleared_while_running", start_date=datetime(2024, 1, 1),
             schedule_interval="@daily") as running:
        PythonOperator(task_id="slow", python_callable=slow_first_try)
''')


@pytest.fixture
def dag_file(tmp_path: Path) -> str:
    path = tmp_path / "dags" / "clear_dags.py"
    path.parent.mkdir()
    path.write_text(DAG_FILE)
    return str(path)


def flux(*args: str, stdin: str | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flux.cli.main", *args], capture_output=True,
                          text=True, input=stdin, timeout=240, env=env)


def test_flux_clear_asks_clears_and_audits(dag_file: str) -> None:
    assert flux("backfill", "cleanable", "-sd", dag_file, "-s", "2024-01-01",
                "-e", "2024-01-02").returncode == 0
    declined = flux("clear", "cleanable", "-sd", dag_file, "-s", "2024-01-02", stdin="n\n")
    assert declined.returncode == 1
    assert "2 task instance(s) will be cleared:" in declined.stdout
    assert "Clear them?" in declined.stdout
    assert {ti.state for ti in rows("cleanable").values()} == {State.SUCCESS}

    done = flux("clear", "cleanable", "-sd", dag_file, "-s", "2024-01-02", "-t", "^b$", "-y")
    assert done.returncode == 0, done.stderr
    assert "  b 2024-01-02 00:00:00 [success]" in done.stdout
    assert done.stdout.rstrip().endswith("Cleared 1 task instance(s).")
    states = {k: ti.state for k, ti in rows("cleanable").items()}
    assert states == {("a", DAY1): State.SUCCESS, ("b", DAY1): State.SUCCESS,
                      ("a", DAY2): State.SUCCESS, ("b", DAY2): None}
    with session_scope() as session:
        audit = session.execute(select(AuditLog).where(AuditLog.event == "clear")).scalar_one()
    assert audit.dag_id == "cleanable" and '"count": 1' in (audit.extra or "")

    rerun = flux("backfill", "cleanable", "-sd", dag_file, "-s", "2024-01-01", "-e", "2024-01-02")
    assert rerun.returncode == 0 and "success  4" in rerun.stdout
    assert rows("cleanable")[("b", DAY2)].try_number == 2
    assert rows("cleanable")[("b", DAY1)].try_number == 1


def test_flux_clear_with_nothing_to_clear_and_bad_dates(dag_file: str) -> None:
    nothing = flux("clear", "cleanable", "-sd", dag_file, "-y")
    assert nothing.returncode == 0 and nothing.stdout.strip() == "No task instances to clear."
    backwards = flux("clear", "cleanable", "-sd", dag_file, "-s", "2024-01-05", "-e", "2024-01-01")
    assert backwards.returncode == 1 and "Traceback" not in backwards.stderr
    errors = [line for line in backwards.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: start date 2024-01-05 00:00:00 is after end date 2024-01-01 00:00:00"]


def test_clearing_a_running_instance_stops_it_and_the_backfill_runs_it_again(
        dag_file: str, flux_env: Path) -> None:
    # a short heartbeat, so the worker notices the clear quickly
    env = {**os.environ, "FLUX__SCHEDULER__HEARTBEAT_SECONDS": "0.2"}
    backfill = subprocess.Popen(
        [sys.executable, "-m", "flux.cli.main", "backfill", "cleared_while_running", "-sd",
         dag_file, "-s", "2024-01-01", "-e", "2024-01-01"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        key = ("slow", DAY1)
        while key not in rows("cleared_while_running") or \
                rows("cleared_while_running")[key].state != State.RUNNING:
            assert backfill.poll() is None, backfill.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        cleared = flux("clear", "cleared_while_running", "-sd", dag_file, "-y")
        assert cleared.returncode == 0 and "[running]" in cleared.stdout
        out, err = backfill.communicate(timeout=120)
    finally:
        if backfill.poll() is None:
            backfill.kill()
            backfill.wait()
    assert backfill.returncode == 0, err
    assert "success  1" in out
    ti = rows("cleared_while_running")[("slow", DAY1)]
    assert (ti.state, ti.try_number) == (State.SUCCESS, 2)
    first_log = next((flux_env / "logs" / "cleared_while_running" / "slow").rglob("1.log"))
    text = first_log.read_text()
    assert "no longer running as this try" in text and "is not stored" in text
