"""A stopped BashOperator leaves no process behind: execution_timeout, SIGTERM to the Python process,
the instance cleared while running, a command that ignores SIGTERM, background leftovers.

Each command prints ``pgid=$$`` first: bash's own pid, which is its process group id because the
operator starts it in a new session. The tests then look for that group in the process table.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from flux import tasklog
from flux.dag import DAG
from flux.state import State
from flux.taskrunner import run_task_instance

from .conftest import (
    DATE,
    WAIT_BOUND_SECONDS,
    assert_group_gone,
    live_group_members,
    pgid_from_log,
    read_log,
    wait_for,
    write_dag_file,
)


def run(task):
    result = run_task_instance(task, DATE)
    return result, read_log(result.log_path)


def pids_in(path: Path) -> list[int]:
    return [int(word) for word in path.read_text().split()]


def assert_pids_gone(pids: list[int], pgid: int) -> None:
    """Each pid has exited (or been reused by a process outside the group)."""
    def gone() -> bool:
        return not any(pid in live_group_members(pgid) for pid in pids)

    wait_for(gone, f"processes {pids} to exit")


def test_execution_timeout_kills_the_command():
    from flux.operators import BashOperator

    with DAG("kill_dag", start_date=DATE):
        task = BashOperator(task_id="sleepy", bash_command="echo pgid=$$; sleep 100; echo never",
                            execution_timeout=1)
    result, log = run(task)

    assert result.state == State.FAILED
    assert "TaskTimeout: execution_timeout of 0:00:01 exceeded" in log
    assert "INFO - never" not in log
    assert_group_gone(pgid_from_log(log))


def test_timeout_kills_grandchildren_too(tmp_path):
    from flux.operators import BashOperator

    with DAG("kill_dag", start_date=DATE):
        task = BashOperator(
            task_id="family",
            bash_command="echo pgid=$$; "
                         "bash -c 'sleep 100 & echo $! >> pids; sleep 100 & echo $! >> pids; "
                         "echo $$ >> pids; wait'",
            cwd=str(tmp_path), execution_timeout=2)
    result, log = run(task)

    assert result.state == State.FAILED
    pgid = pgid_from_log(log)
    pids = pids_in(tmp_path / "pids")
    assert len(pids) == 3, "the command did not start its children before the timeout"
    assert_pids_gone([*pids, pgid], pgid)
    assert_group_gone(pgid)


def test_a_command_ignoring_sigterm_is_killed_after_the_grace_period():
    from flux.operators import BashOperator

    with DAG("kill_dag", start_date=DATE):
        # The ignored SIGTERM is inherited by sleep: only SIGKILL ends this group.
        task = BashOperator(task_id="stubborn", bash_command="trap '' TERM; echo pgid=$$; sleep 60",
                            execution_timeout=1)
    result, log = run(task)
    assert result.state == State.FAILED
    assert "TaskTimeout" in log
    assert_group_gone(pgid_from_log(log))


def test_sigterm_to_the_python_process_kills_the_group(tmp_path):
    """A separate Python process runs the task; SIGTERM to it stops the task and its group."""
    dag_file = write_dag_file(tmp_path, "term_dag", """
        BashOperator(task_id="victim",
                     bash_command="echo pgid=$$; bash -c 'sleep 100 & sleep 100 & wait'")
    """)
    script = tmp_path / "run_one.py"
    script.write_text(textwrap.dedent(f"""
        from datetime import datetime
        from flux.dagbag import get_dag_from_file
        from flux.taskrunner import run_task_instance

        dag = get_dag_from_file({str(dag_file)!r}, "term_dag")
        result = run_task_instance(dag.get_task("victim"), datetime({DATE.year}, {DATE.month}, {DATE.day}))
        print("STATE", result.state)
    """))
    log_path = tasklog.log_path("term_dag", "victim", DATE, 1)
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                             env=os.environ.copy())
    try:
        wait_for(lambda: log_path.exists() and "pgid=" in log_path.read_text(), "the command to start")
        pgid = pgid_from_log(log_path.read_text())
        wait_for(lambda: len(live_group_members(pgid)) >= 3, "bash and its two sleeps")
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=WAIT_BOUND_SECONDS)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    log = log_path.read_text()
    assert "STATE failed" in out
    assert "TaskKilled: received signal SIGTERM" in log
    assert_group_gone(pgid)


def test_clearing_a_running_instance_stops_its_command():
    """The heartbeat notices the instance was cleared and stops the task (SIGUSR1 -> TaskKilled)."""
    from flux.operators import BashOperator

    with DAG("clear_dag", start_date=DATE) as dag:
        task = BashOperator(task_id="cleared",
                            bash_command="echo pgid=$$; bash -c 'sleep 100 & wait'; echo never")
    log_path = tasklog.log_path("clear_dag", "cleared", DATE, 1)

    def clear_once_started() -> None:
        wait_for(lambda: log_path.exists() and "pgid=" in log_path.read_text(), "the command to start")
        dag.clear(start_date=DATE, end_date=DATE)

    clearer = threading.Thread(target=clear_once_started)
    clearer.start()
    try:
        result, log = run(task)
    finally:
        clearer.join(WAIT_BOUND_SECONDS)
    assert "TaskKilled: received signal SIGUSR1" in log
    assert "INFO - never" not in log
    assert result.state != State.SUCCESS
    assert_group_gone(pgid_from_log(log))


def test_on_kill_from_another_thread_stops_the_command(tmp_path):
    """An executor's supervisor may call on_kill from outside while execute runs elsewhere."""
    from flux.operators import BashOperator

    with DAG("onkill_dag", start_date=DATE):
        task = BashOperator(task_id="outside", bash_command="echo pgid=$$ > pgid; sleep 60",
                            cwd=str(tmp_path))
    from flux.models import TaskInstance

    ti = TaskInstance(dag_id="onkill_dag", task_id="outside", execution_date=DATE, try_number=1)
    context = {"ti": ti, "task": task, "dag": task.dag, "execution_date": DATE}
    outcome: list[BaseException] = []

    def execute() -> None:
        try:
            task.execute(context)
        except BaseException as exc:  # recorded for the assertion below
            outcome.append(exc)

    worker = threading.Thread(target=execute)
    worker.start()
    try:
        wait_for(lambda: (tmp_path / "pgid").exists() and task._running is not None, "the command")
        pgid = int((tmp_path / "pgid").read_text().split("=")[1])
        task.on_kill()
    finally:
        worker.join(WAIT_BOUND_SECONDS)
    assert not worker.is_alive()
    assert outcome and "killed by signal SIGTERM" in str(outcome[0])
    assert_group_gone(pgid)


def test_background_leftovers_are_stopped_when_the_command_ends(tmp_path):
    from flux.operators import BashOperator

    with DAG("leftover_dag", start_date=DATE):
        task = BashOperator(task_id="daemon",
                            bash_command="echo pgid=$$; sleep 100 >/dev/null 2>&1 & echo $! > pid; echo done",
                            cwd=str(tmp_path))
    result, log = run(task)
    assert result.state == State.SUCCESS
    assert result.return_value == "done"
    assert "Stopped processes the command left running in the background" in log
    pgid = pgid_from_log(log)
    assert_pids_gone(pids_in(tmp_path / "pid"), pgid)
    assert_group_gone(pgid)
