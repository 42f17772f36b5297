"""``execution_timeout`` stops a task within the timeout plus the grace period, and fails it.

Also when the task does not cooperate: a loop that catches ``Exception`` (TaskTimeout and
TaskKilled are Exceptions, so the first request is swallowed: the escalation after the grace
period is a BaseException), a task that catches the timeout and returns as if nothing happened, a
task blocked in a C call (``time.sleep`` in a thread it joins), and a BashOperator's ``sleep 60``.
They run for real: through ``flux backfill`` with LocalExecutor workers, and one task alone through
``flux run`` (no executor around it to kill it from outside).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from flux.state import State
from flux.taskrunner import ESCALATION_SLACK_SECONDS

from .conftest import FluxProcesses, task_instance, wait_for, write_dag

TIMEOUT = 1.0
#: scheduling noise allowed on top of timeout + grace (a correctness bound, not a benchmark)
MARGIN = 3.0

DAG_BODY = '''
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from flux import DAG
from flux.operators import BashOperator, PythonOperator

OUT = Path({out!r})


def swallow(name):
    (OUT / f"{{name}}.started").touch()
    while True:
        try:
            time.sleep(0.1)
        except Exception:
            pass


def swallow_then_return():
    try:
        time.sleep(60)
    except Exception:
        return "carried on"


def join_sleeping_thread():
    sleeper = threading.Thread(target=time.sleep, args=(60,))
    sleeper.start()
    sleeper.join()


with DAG("stubborn", start_date=datetime(2024, 1, 1), schedule_interval="@once") as dag:
    limit = timedelta(seconds={timeout})
    PythonOperator(task_id="catches_exception", python_callable=swallow,
                   op_kwargs={{"name": "catches_exception"}}, execution_timeout=limit)
    PythonOperator(task_id="catches_and_returns", python_callable=swallow_then_return,
                   execution_timeout=limit)
    PythonOperator(task_id="joins_thread", python_callable=join_sleeping_thread,
                   execution_timeout=limit)
    BashOperator(task_id="bash_sleep", bash_command="sleep 60", execution_timeout=limit)
    # for `flux run` tests only: stopped by a signal, not by a timeout
    PythonOperator(task_id="ignores_sigterm", python_callable=swallow,
                   op_kwargs={{"name": "ignores_sigterm"}})
'''

TIMED = ["catches_exception", "catches_and_returns", "joins_thread", "bash_sleep"]


@pytest.fixture
def dags(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    folder = tmp_path / "dags"
    write_dag(folder, "stubborn", DAG_BODY.format(out=str(out), timeout=TIMEOUT))
    return folder


def grace(settings: dict[str, str]) -> float:
    """How long a stopped task may go on before it is forced: the grace period and the slack."""
    return float(settings["FLUX__CORE__KILLED_TASK_GRACE_SECONDS"]) + ESCALATION_SLACK_SECONDS


def assert_stopped_in_time(task_id: str, bound: float) -> None:
    ti = task_instance("stubborn", task_id)
    assert ti.state == State.FAILED, (task_id, ti.state, ti.note)
    assert ti.try_number == 1
    took = (ti.end_date - ti.start_date).total_seconds()
    assert took < bound, f"{task_id} ran {took:.1f} s, over timeout + grace + margin ({bound} s)"


def test_timeouts_stop_uncooperative_tasks_in_a_backfill(
        dags: Path, flux_processes: FluxProcesses, fast_heartbeats: dict[str, str]) -> None:
    backfill = flux_processes.start(
        "backfill", "stubborn", "-s", "2024-01-01", "-e", "2024-01-01", "-sd", str(dags),
        "-t", "^(" + "|".join(TIMED) + ")$", env={"FLUX__CORE__PARALLELISM": "4"})
    code = flux_processes.wait(backfill)
    output = flux_processes.output(backfill)
    assert code == 1, output  # the backfill reports its failed instances
    bound = TIMEOUT + grace(fast_heartbeats) + MARGIN
    for task_id in TIMED:
        assert_stopped_in_time(task_id, bound)
        note = task_instance("stubborn", task_id).note
        assert "execution_timeout of 0:00:01 exceeded" in note, (task_id, note)
    assert "TaskStopEscalated" in task_instance("stubborn", "catches_exception").note
    assert "caught the timeout and returned" in task_instance("stubborn", "catches_and_returns").note


def test_timeout_swallowed_by_a_task_run_alone(
        dags: Path, flux_processes: FluxProcesses, fast_heartbeats: dict[str, str]) -> None:
    """`flux run` has no executor to kill it from outside: the task runner itself must escalate."""
    runner = flux_processes.start("run", "stubborn", "catches_exception", "2024-01-01", "-sd", str(dags))
    assert flux_processes.wait(runner) == 1, flux_processes.output(runner)
    assert_stopped_in_time("catches_exception", TIMEOUT + grace(fast_heartbeats) + MARGIN)


def test_sigterm_swallowed_by_a_task_escalates(
        dags: Path, tmp_path: Path, flux_processes: FluxProcesses,
        fast_heartbeats: dict[str, str]) -> None:
    """SIGTERM raises TaskKilled, which the task swallows too; the grace period ends it."""
    runner = flux_processes.start("run", "stubborn", "ignores_sigterm", "2024-01-01", "-sd", str(dags))
    wait_for(lambda: (tmp_path / "out" / "ignores_sigterm.started").exists(), "the task to start")
    os.kill(runner.pid, signal.SIGTERM)
    assert flux_processes.wait(runner, bound=grace(fast_heartbeats) + 30) == 1
    ti = task_instance("stubborn", "ignores_sigterm")
    assert ti.state == State.FAILED
    assert "TaskStopEscalated" in ti.note and "SIGTERM" in ti.note


def test_task_cleared_while_running_is_stopped_even_if_it_swallows_the_kill(
        dags: Path, tmp_path: Path, flux_processes: FluxProcesses,
        fast_heartbeats: dict[str, str]) -> None:
    """`flux clear` while the try runs: the heartbeat sees it, TaskKilled is swallowed, the
    escalation stops the task; the cleared state is kept (the outcome of the try is not stored)."""
    runner = flux_processes.start("run", "stubborn", "ignores_sigterm", "2024-01-01", "-sd", str(dags))
    wait_for(lambda: (tmp_path / "out" / "ignores_sigterm.started").exists(), "the task to start")
    cleared = flux_processes.start("clear", "stubborn", "-t", "^ignores_sigterm$", "-s", "2024-01-01",
                                   "-e", "2024-01-01", "-sd", str(dags), "-y")
    assert flux_processes.wait(cleared) == 0, flux_processes.output(cleared)
    heartbeat = float(fast_heartbeats["FLUX__SCHEDULER__HEARTBEAT_SECONDS"])
    # the heartbeat notices within two beats (its first one after a try starts only looks)
    flux_processes.wait(runner, bound=2 * heartbeat + grace(fast_heartbeats) + 30)
    output = flux_processes.output(runner)
    assert "Traceback" not in output
    ti = task_instance("stubborn", "ignores_sigterm")
    assert ti.state is None, "the stopped try overwrote the cleared state"
    from flux.tasklog import log_path

    log = log_path("stubborn", "ignores_sigterm", ti.execution_date, 1).read_text(encoding="utf-8")
    assert "no longer running as this try" in log
    assert "TaskStopEscalated" in log
    assert "was changed by someone else while it ran" in log
