"""A LocalExecutor worker SIGKILLed in the middle of a task: the try is lost, never recorded as a
success; the instance goes up for retry, the retry callback runs exactly once, and try 2 succeeds.

The fault is real: the test reads the pid of the process running the task from the task
instance's ``pid`` column and kills that process, while ``flux backfill`` or ``flux scheduler``
runs in a subprocess. Every state change is recorded by a listener plugin (flux_recording.py), so
the test sees each state the instance went through, not only the last one.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from flux.state import State

from .conftest import (
    FluxProcesses,
    lines,
    pid_alive,
    task_instance,
    transitions,
    wait_for,
    write_dag,
)

DAG_BODY = '''
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from flux import DAG
from flux.operators import PythonOperator

OUT = Path({out!r})


def victim(ti):
    with open(OUT / "tries.txt", "a") as handle:
        handle.write(f"{{ti.try_number}} {{os.getpid()}}\\n")
    if ti.try_number == 1:
        (OUT / "started").write_text(str(os.getpid()))
        time.sleep(300)  # the test kills this process long before
    with open(OUT / "finished.txt", "a") as handle:
        handle.write(f"{{ti.try_number}}\\n")


def count(context):
    with open(OUT / "callbacks.txt", "a") as handle:
        handle.write(f"{{os.getpid()}}\\n")


with DAG("killme", start_date=datetime(2024, 1, 1), schedule_interval="@once") as dag:
    PythonOperator(task_id="victim", python_callable=victim, retries=1,
                   retry_delay=timedelta(0), on_retry_callback=count, on_failure_callback=count)
'''


@pytest.mark.parametrize("runner", ["backfill", "scheduler"])
def test_sigkilled_worker_is_retried_once_and_never_recorded_as_success(
        runner: str, tmp_path: Path, flux_processes: FluxProcesses,
        fast_heartbeats: dict[str, str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    dags = tmp_path / "dags"
    write_dag(dags, "killme", DAG_BODY.format(out=str(out)))
    if runner == "backfill":
        process = flux_processes.start("backfill", "killme", "-s", "2024-01-01", "-e", "2024-01-01",
                                       "-sd", str(dags))
    else:
        process = flux_processes.start("scheduler", "-sd", str(dags))

    wait_for(lambda: (out / "started").exists(), "try 1 of the task to start")
    ti = task_instance("killme", "victim")
    assert (ti.state, ti.try_number) == (State.RUNNING, 1)
    worker = ti.pid
    assert worker == int((out / "started").read_text()), "the pid column names another process"
    assert worker != process.pid and pid_alive(worker)
    killed_at = time.time()
    os.kill(worker, signal.SIGKILL)

    wait_for(lambda: task_instance("killme", "victim").state == State.SUCCESS, "try 2 to succeed")
    code = flux_processes.wait(process) if runner == "backfill" else flux_processes.stop(process)
    output = flux_processes.output(process)
    assert code == 0, output
    assert "Traceback" not in output

    ti = task_instance("killme", "victim")
    assert (ti.state, ti.try_number) == (State.SUCCESS, 2)
    tries = [line.split() for line in lines(out / "tries.txt")]
    assert [t for t, _ in tries] == ["1", "2"], "a try ran twice or was skipped"
    assert int(tries[0][1]) == worker and int(tries[1][1]) != worker
    assert lines(out / "finished.txt") == ["2"], "the killed try 1 reported finishing"
    assert len(lines(out / "callbacks.txt")) == 1, "the retry callback did not run exactly once"

    changes = [c for c in transitions(flux_processes.transitions) if c.task_id == "victim"]
    assert not [c for c in changes if c.try_number == 1 and c.state == State.SUCCESS]
    lost = [c for c in changes if c.try_number == 1 and c.state == State.UP_FOR_RETRY]
    assert len(lost) == 1, changes
    # the LocalExecutor parent saw its worker die (it records the loss itself, at once); the
    # scheduler's zombie check would have needed the threshold plus one check interval
    assert lost[0].pid == process.pid
    bound = float(fast_heartbeats["FLUX__SCHEDULER__ZOMBIE_THRESHOLD_SECONDS"]) + float(
        fast_heartbeats["FLUX__SCHEDULER__HEARTBEAT_SECONDS"])
    assert lost[0].at - killed_at < bound + 5.0
    assert [c.state for c in changes if c.try_number == 2][-1] == State.SUCCESS

    from flux.tasklog import log_path

    first_log = log_path("killme", "victim", ti.execution_date, 1).read_text(encoding="utf-8")
    assert "Marking task as SUCCESS" not in first_log
    assert "Marking task as SUCCESS" in log_path("killme", "victim", ti.execution_date, 2).read_text()
