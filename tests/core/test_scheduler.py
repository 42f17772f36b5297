"""The scheduler: runs created on schedule, catchup, pause, manual runs, zombies, restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from flux.dates import utcnow
from flux.db import session_scope
from flux.exceptions import SchedulerError
from flux.executors.base import BaseExecutor, TaskEvent
from flux.models import DagModel, DagRun, Job, TaskInstance
from flux.scheduler import Scheduler
from flux.state import State

HOURLY_DAG = """
from datetime import timedelta
from flux import DAG
from flux.operators import PythonOperator
from flux.dates import utcnow

start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours={hours})
with DAG("{dag_id}", start_date=start, schedule_interval="@hourly", catchup={catchup}) as dag:
    a = PythonOperator(task_id="a", python_callable=lambda: 1)
    b = PythonOperator(task_id="b", python_callable=lambda: 2)
    a >> b
"""


def write_dag(folder: Path, dag_id: str, hours: int = 3, catchup: bool = True) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{dag_id}.py"
    path.write_text(HOURLY_DAG.format(dag_id=dag_id, hours=hours, catchup=catchup))
    return path


def run_scheduler(folder: Path, passes: int = 10, **kwargs: object) -> Scheduler:
    scheduler = Scheduler(subdir=str(folder), executor="sequential", num_runs=passes,
                          loop_interval=0.05, **kwargs)  # type: ignore[arg-type]
    scheduler.run()
    return scheduler


def runs(dag_id: str) -> list[tuple[str, str]]:
    with session_scope() as session:
        rows = session.execute(select(DagRun.execution_date, DagRun.state)
                               .where(DagRun.dag_id == dag_id).order_by(DagRun.execution_date)).all()
    return [(when.strftime("%H:%M"), state) for when, state in rows]


def instance_states(dag_id: str) -> list[str | None]:
    with session_scope() as session:
        return list(session.execute(select(TaskInstance.state)
                                    .where(TaskInstance.dag_id == dag_id)).scalars())


def test_catchup_creates_every_missed_run_and_runs_them(tmp_path: Path) -> None:
    write_dag(tmp_path / "dags", "hourly", hours=3)
    run_scheduler(tmp_path / "dags")
    assert [state for _, state in runs("hourly")] == ["success"] * 3
    assert instance_states("hourly") == ["success"] * 6


def test_without_catchup_only_the_latest_run_is_created(tmp_path: Path) -> None:
    write_dag(tmp_path / "dags", "latest", hours=5, catchup=False)
    run_scheduler(tmp_path / "dags")
    created = runs("latest")
    assert len(created) == 1
    expected = (utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1))
    assert created[0] == (expected.strftime("%H:%M"), "success")


def test_paused_dag_gets_no_runs_until_unpaused(tmp_path: Path) -> None:
    write_dag(tmp_path / "dags", "sleepy", hours=2)
    scheduler = Scheduler(subdir=str(tmp_path / "dags"), executor="sequential", num_runs=1)
    scheduler.folder.refresh()
    with session_scope() as session:
        session.get(DagModel, "sleepy").is_paused = True
    run_scheduler(tmp_path / "dags", passes=5)
    assert runs("sleepy") == []
    with session_scope() as session:
        session.get(DagModel, "sleepy").is_paused = False
    run_scheduler(tmp_path / "dags", passes=8)
    assert [state for _, state in runs("sleepy")] == ["success", "success"]


class HoldingExecutor(BaseExecutor):
    """Takes requests and starts none of them: what a pass queues stays in ``pending``."""

    executor_name = "holding"

    def get_events(self, timeout: float = 0.0) -> list[TaskEvent]:
        return []


def test_a_pass_queues_one_waiting_request_per_worker_beyond_the_free_slots(tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "wide.py").write_text(textwrap.dedent("""
        from datetime import datetime
        from flux import DAG
        from flux.operators import EmptyOperator

        with DAG("wide", start_date=datetime(2024, 1, 1), schedule_interval="@daily",
                 catchup=False) as dag:
            for i in range(7):
                EmptyOperator(task_id=f"t{i}")
    """))
    executor = HoldingExecutor(parallelism=3)
    scheduler = Scheduler(subdir=str(folder), executor=executor)
    scheduler.folder.refresh()
    for _ in range(3):  # the first pass creates the run; later ones find nothing more to queue
        scheduler._pass()
    assert len(executor.pending) == 6  # 2 x parallelism: one running and one waiting per worker
    assert Counter(instance_states("wide")) == {State.QUEUED: 6, None: 1}


def test_manual_trigger_runs_a_dag_without_schedule(tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "manual.py").write_text(textwrap.dedent("""
        from datetime import datetime
        from flux import DAG
        from flux.operators import PythonOperator

        def record(**context):
            return context["dag_run_conf"].get("who")

        with DAG("manual", start_date=datetime(2024, 1, 1), schedule_interval=None) as dag:
            PythonOperator(task_id="record", python_callable=record)
    """))
    from click.testing import CliRunner

    from flux.cli.main import cli

    run_scheduler(folder, passes=3)
    assert runs("manual") == []
    result = CliRunner().invoke(cli, ["dags", "trigger", "manual", "-sd", str(folder),
                                      "--conf", '{"who": "me"}'])
    assert result.exit_code == 0, result.output
    run_scheduler(folder, passes=6)
    assert [state for _, state in runs("manual")] == ["success"]
    from flux import xcom

    with session_scope() as session:
        when = session.execute(select(DagRun.execution_date).where(DagRun.dag_id == "manual")).scalar()
    assert xcom.pull("manual", "record", when) == "me"  # the run's conf reached the task


def test_second_scheduler_on_sqlite_is_refused(tmp_path: Path) -> None:
    from flux import jobs
    from flux.db import is_sqlite

    if not is_sqlite():
        pytest.skip("the refusal is about SQLite")
    write_dag(tmp_path / "dags", "one", hours=1)
    other = jobs.start_job("scheduler")
    try:
        with pytest.raises(SchedulerError, match="SQLite cannot coordinate two schedulers"):
            run_scheduler(tmp_path / "dags", passes=1)
    finally:
        jobs.end_job(other, "success")
    run_scheduler(tmp_path / "dags", passes=6)  # once the other stopped, it starts fine
    assert [state for _, state in runs("one")] == ["success"]


def test_zombie_is_retried_then_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A running instance whose heartbeat stopped (its process died) is found and retried."""
    write_dag(tmp_path / "dags", "ghost", hours=1)
    monkeypatch.setenv("FLUX__SCHEDULER__ZOMBIE_THRESHOLD_SECONDS", "1")
    from flux.config import reset_config

    reset_config()
    scheduler = Scheduler(subdir=str(tmp_path / "dags"), executor="sequential", num_runs=1)
    scheduler.folder.refresh()
    when = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    stale = utcnow() - timedelta(seconds=30)
    with session_scope() as session:
        session.add(TaskInstance(dag_id="ghost", task_id="a", execution_date=when,
                                 state=State.RUNNING, try_number=1, max_tries=1, heartbeat=stale,
                                 start_date=stale, pid=999999, hostname="gone"))
    scheduler._find_zombies()
    with session_scope() as session:
        ti = session.get(TaskInstance, ("ghost", "a", when))
        assert ti.state == State.UP_FOR_RETRY
        assert "zombie" in ti.note
        ti.state, ti.try_number, ti.heartbeat = State.RUNNING, 2, stale
    scheduler._find_zombies()
    with session_scope() as session:
        assert session.get(TaskInstance, ("ghost", "a", when)).state == State.FAILED


def _start_scheduler_process(folder: Path, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, **extra_env}
    return subprocess.Popen([sys.executable, "-m", "flux.cli.main", "scheduler", "-sd", str(folder)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_scheduler_sigkill_and_restart_finishes_everything(tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "slow.py").write_text(textwrap.dedent("""
        import time
        from datetime import timedelta
        from flux import DAG
        from flux.operators import PythonOperator
        from flux.dates import utcnow

        start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
        with DAG("slow", start_date=start, schedule_interval="@hourly") as dag:
            for i in range(3):
                PythonOperator(task_id=f"t{i}", python_callable=lambda: time.sleep(1.5),
                               retries=2, retry_delay=0)
    """))
    # generous thresholds: a loaded machine must not turn a slow heartbeat into a zombie
    env = {"FLUX__SCHEDULER__ZOMBIE_THRESHOLD_SECONDS": "10", "FLUX__SCHEDULER__HEARTBEAT_SECONDS": "1",
           "FLUX__SCHEDULER__LOOP_INTERVAL": "0.2", "FLUX__CORE__PARALLELISM": "2"}
    first = _start_scheduler_process(folder, env)

    def some_running() -> bool:
        return State.RUNNING in instance_states("slow")

    assert _wait_for(some_running, 30), "the first scheduler never started a task"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    # its job row says running but stops beating; wait so a new one is not refused
    time.sleep(16)
    second = _start_scheduler_process(folder, env)
    try:
        def all_done() -> bool:
            states = instance_states("slow")
            return len(states) == 12 and all(s == State.SUCCESS for s in states)

        if not _wait_for(all_done, 180):
            with session_scope() as session:
                rows = session.execute(select(TaskInstance.task_id, TaskInstance.execution_date,
                                              TaskInstance.state, TaskInstance.try_number,
                                              TaskInstance.note)
                                       .where(TaskInstance.dag_id == "slow")).all()
            pytest.fail(f"not all instances succeeded: {rows}")
        assert [state for _, state in runs("slow")] == ["success"] * 4
    finally:
        second.send_signal(signal.SIGTERM)
        output = second.communicate(timeout=60)[0].decode()
    assert second.returncode == 0, output
    assert "Traceback" not in output
    with session_scope() as session:
        jobs = session.execute(select(Job.state).where(Job.job_type == "scheduler")).scalars().all()
    assert "success" in jobs
