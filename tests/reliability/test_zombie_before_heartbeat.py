"""A task killed before its first heartbeat is still found: the ``running`` claim itself writes
``heartbeat = now``, so the scheduler's zombie check sees the heartbeat go stale like any other.

``flux run`` runs try 1 in a process of its own (as a remote worker would) and the task SIGKILLs
that process as soon as its code starts: after the claim, before the heartbeat thread's first beat.
Then ``flux scheduler`` runs in a subprocess with a 3 s zombie threshold and 1 s heartbeats: it
must set the instance up for retry (running the retry callback once) and run try 2 itself.
"""

from __future__ import annotations

from pathlib import Path

from flux.state import State

from .conftest import FluxProcesses, lines, task_instance, transitions, wait_for, write_dag

DAG_BODY = '''
import os
import signal
from datetime import datetime, timedelta
from pathlib import Path

from flux import DAG
from flux.operators import PythonOperator

OUT = Path({out!r})


def victim(ti):
    with open(OUT / "tries.txt", "a") as handle:
        handle.write(f"{{ti.try_number}} {{os.getpid()}}\\n")
    if ti.try_number == 1:
        os.kill(os.getpid(), signal.SIGKILL)


def count(context):
    with open(OUT / "callbacks.txt", "a") as handle:
        handle.write(f"{{os.getpid()}}\\n")


with DAG("early", start_date=datetime(2024, 1, 1), schedule_interval="@once") as dag:
    PythonOperator(task_id="victim", python_callable=victim, retries=1,
                   retry_delay=timedelta(0), on_retry_callback=count, on_failure_callback=count)
'''


def test_task_killed_before_its_first_heartbeat_is_a_zombie(
        tmp_path: Path, flux_processes: FluxProcesses, fast_heartbeats: dict[str, str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    dags = tmp_path / "dags"
    write_dag(dags, "early", DAG_BODY.format(out=str(out)))

    runner = flux_processes.start("run", "early", "victim", "2024-01-01", "-sd", str(dags))
    assert flux_processes.wait(runner) == -9, flux_processes.output(runner)
    ti = task_instance("early", "victim")
    assert (ti.state, ti.try_number, ti.pid) == (State.RUNNING, 1, runner.pid)
    # the heartbeat thread never beat: what is there is the claim's own heartbeat
    assert ti.heartbeat == ti.start_date
    claimed_heartbeat = ti.heartbeat.timestamp()

    scheduler = flux_processes.start("scheduler", "-sd", str(dags))
    wait_for(lambda: task_instance("early", "victim").state == State.SUCCESS, "try 2 to succeed")
    code = flux_processes.stop(scheduler)
    output = flux_processes.output(scheduler)
    assert code == 0, output
    assert "Traceback" not in output
    assert "Zombie early.victim" in output

    ti = task_instance("early", "victim")
    assert (ti.state, ti.try_number) == (State.SUCCESS, 2)
    assert [line.split()[0] for line in lines(out / "tries.txt")] == ["1", "2"]
    callbacks = lines(out / "callbacks.txt")
    assert callbacks == [str(scheduler.pid)], "the retry callback did not run once, in the scheduler"
    changes = [c for c in transitions(flux_processes.transitions) if c.task_id == "victim"]
    assert not [c for c in changes if c.try_number == 1 and c.state == State.SUCCESS]
    lost = [c for c in changes if c.try_number == 1 and c.state == State.UP_FOR_RETRY]
    assert len(lost) == 1 and lost[0].pid == scheduler.pid, changes
    # found within the threshold plus one check interval (and the scheduler's start-up)
    threshold = float(fast_heartbeats["FLUX__SCHEDULER__ZOMBIE_THRESHOLD_SECONDS"])
    interval = float(fast_heartbeats["FLUX__SCHEDULER__HEARTBEAT_SECONDS"])
    assert lost[0].at - claimed_heartbeat >= threshold
    assert lost[0].at - claimed_heartbeat < threshold + interval + 10.0
