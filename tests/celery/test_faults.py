"""Faults, with real processes: a worker killed mid-task, a message delivered twice, the broker
down when the scheduler starts, the broker restarted mid-run."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from celery_harness import Cluster, Proc, RedisServer, free_port, wait_for, write_dag
from sqlalchemy import select

from flux.dates import UTC, utcnow
from flux.db import session_scope
from flux.executors.base import TaskRequest
from flux.models import TaskInstance
from flux.state import State

DAY1 = datetime(2024, 1, 1, tzinfo=UTC)

RECORDING_DAG = textwrap.dedent("""
    import os, time
    from datetime import datetime
    from flux import DAG
    from flux.operators import PythonOperator

    RECORD = {record!r}

    def record(ti, seconds=0.0, **context):
        with open(RECORD, "a") as fh:
            fh.write(f"{{ti.task_id}} {{ti.try_number}} {{os.environ.get('FLUX_HOME')}} {{os.getpid()}}\\n")
        time.sleep(seconds)
        return ti.try_number

    def die_on_first_try(ti, **context):
        record(ti)
        if ti.try_number == 1:
            os.kill(os.getpid(), 9)  # the pool process dies; its worker lives on

    with DAG("{dag_id}", start_date=datetime(2024, 1, 1), schedule_interval="@once") as dag:
    {tasks}
""")


def recording_dag(cluster: Cluster, dag_id: str, tasks: str) -> Path:
    record = cluster.root.parent / f"{dag_id}.record"
    body = textwrap.indent(textwrap.dedent(tasks).strip(), "    ")
    write_dag(cluster, dag_id, RECORDING_DAG.format(record=str(record), dag_id=dag_id, tasks=body))
    return record


def records(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def states(dag_id: str) -> dict[str, tuple[str | None, int]]:
    with session_scope() as session:
        return {ti.task_id: (ti.state, ti.try_number) for ti in session.execute(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id)).scalars()}


def scheduler(cluster: Cluster, name: str = "scheduler", **env: str) -> Proc:
    return cluster.start(name, "scheduler", "--executor", "celery", "--parallelism", "16", env=env)


def all_ended(dag_id: str, count: int) -> bool:
    found = states(dag_id)
    return len(found) == count and all(s in State.FINISHED for s, _ in found.values())


# --- a worker lost mid-task ------------------------------------------------------------------------

@pytest.mark.slow
def test_worker_killed_mid_task_its_task_runs_once_more_on_another(cluster: Cluster,
                                                                   redis_server: RedisServer) -> None:
    """SIGKILL a whole worker (main and pool processes, as when its machine dies) mid-task."""
    record = recording_dag(cluster, "victim", textwrap.dedent("""
        PythonOperator(task_id="slow", python_callable=record, op_kwargs={"seconds": 6},
                       retries=1, retry_delay=0)"""))
    # the broker hands an unacknowledged message out again after 8 s: the first one comes back
    env = {"FLUX__CELERY__VISIBILITY_TIMEOUT": "8"}
    workers = {w.home.name: w for w in (cluster.worker("w1", "-c", "1", env=env),
                                         cluster.worker("w2", "-c", "1", env=env))}
    sched = scheduler(cluster, **env)
    assert wait_for(lambda: records(record), 60), sched.text()
    home = records(record)[0][2]
    victim = workers[Path(home).name]
    victim.kill_group()
    assert wait_for(lambda: states("victim").get("slow", (None, 0))[0] == State.SUCCESS, 90), \
        (states("victim"), sched.text())
    survivor = next(w for name, w in workers.items() if w is not victim)
    # the redelivered message for try 1 reached the survivor and was acknowledged without running
    assert wait_for(lambda: redis_server.client(0).hlen("unacked") == 0, 60), survivor.text()
    time.sleep(1)
    ran = records(record)
    assert [(r[1], Path(r[2]).name) for r in ran] == [
        ("1", victim.home.name), ("2", survivor.home.name)], ran
    with session_scope() as session:
        ti = session.get(TaskInstance, ("victim", "slow", DAY1))
        assert (ti.state, ti.try_number) == (State.SUCCESS, 2)
    assert (survivor.home / "logs" / "victim" / "slow" / "2024-01-01T00:00:00" / "2.log").exists()
    sched.stop()
    assert "Traceback" not in sched.text()


@pytest.mark.slow
def test_pool_process_killed_message_comes_back_and_the_next_try_runs_once(
        cluster: Cluster) -> None:
    """The pool process dies; Celery puts the message back at once (late ack, reject on worker
    lost). The worker that gets it sees the try started, waits until its heartbeat is stale, sets
    it up for retry: try 2 then runs once."""
    record = recording_dag(cluster, "crash", textwrap.dedent("""
        PythonOperator(task_id="crash", python_callable=die_on_first_try, retries=2,
                       retry_delay=0)"""))
    cluster.worker("w1", "-c", "1")
    cluster.worker("w2", "-c", "1")
    sched = scheduler(cluster)
    assert wait_for(lambda: states("crash").get("crash", (None, 0))[0] == State.SUCCESS, 90), \
        (states("crash"), sched.text())
    assert [r[1] for r in records(record)] == ["1", "2"]
    with session_scope() as session:
        assert session.get(TaskInstance, ("crash", "crash", DAY1)).try_number == 2
    sched.stop()


# --- fencing, in this process ----------------------------------------------------------------------

FENCE_DAG = textwrap.dedent("""
    from datetime import datetime
    from flux import DAG
    from flux.operators import PythonOperator

    def count(**context):
        with open({record!r}, "a") as fh:
            fh.write("ran\\n")

    with DAG("fence", start_date=datetime(2024, 1, 1), schedule_interval="@daily") as dag:
        PythonOperator(task_id="once", python_callable=count, retries=1, retry_delay=0)
""")


def _fence_request(tmp_path: Path, state: str | None, tries: int,
                   heartbeat_age: float = 0.0) -> tuple[TaskRequest, Path]:
    record = tmp_path / "fence.record"
    dag_file = tmp_path / "fence_dag.py"
    dag_file.write_text(FENCE_DAG.format(record=str(record)))
    beat = utcnow() - timedelta(seconds=heartbeat_age)
    with session_scope() as session:
        session.add(TaskInstance(dag_id="fence", task_id="once", execution_date=DAY1, state=state,
                                 try_number=tries, max_tries=1, heartbeat=beat, start_date=beat,
                                 hostname="gone", pid=1))
    request = TaskRequest("fence", "once", DAY1, try_number=1 if state == State.RUNNING else tries + 1,
                          dag_file=str(dag_file))
    return request, record


def test_a_message_delivered_twice_runs_its_try_once(tmp_path: Path) -> None:
    from flux_celery.payload import request_to_payload
    from flux_celery.runner import run_payload

    request, record = _fence_request(tmp_path, State.QUEUED, 0)
    payload = request_to_payload(request)
    assert run_payload(payload)["state"] == State.SUCCESS
    second = run_payload(payload, redelivered=True)
    assert second == {"state": State.SUCCESS, "try_number": 1, "message": second["message"]}
    assert "already succeeded" in second["message"]
    assert record.read_text() == "ran\n"


def test_redelivered_message_of_a_dead_try_fails_it_and_never_reruns_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flux.config import reset_config
    from flux_celery.payload import request_to_payload
    from flux_celery.runner import run_payload

    monkeypatch.setenv("FLUX__SCHEDULER__ZOMBIE_THRESHOLD_SECONDS", "5")
    reset_config()
    request, record = _fence_request(tmp_path, State.RUNNING, 1, heartbeat_age=30)
    result = run_payload(request_to_payload(request), redelivered=True)
    assert result["state"] == State.UP_FOR_RETRY and "worker lost" in result["message"]
    assert not record.exists()  # try 1 is not run again
    with session_scope() as session:
        ti = session.get(TaskInstance, request.key)
        assert (ti.state, ti.try_number) == (State.UP_FOR_RETRY, 1)
        ti.state = State.QUEUED  # the scheduler sends try 2
    assert run_payload(request_to_payload(request))["state"] == State.QUEUED  # fenced: not run
    assert not record.exists()
    try2 = TaskRequest(**{**request.__dict__, "try_number": 2})
    assert run_payload(request_to_payload(try2)) == {"state": State.SUCCESS, "try_number": 2,
                                                      "message": ""}
    assert run_payload(request_to_payload(try2))["state"] == State.SUCCESS
    assert record.read_text() == "ran\n"


def test_a_copy_delivered_while_the_first_runs_waits_for_its_outcome(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flux.config import reset_config
    from flux_celery.runner import settle_started_try

    monkeypatch.setenv("FLUX__SCHEDULER__ZOMBIE_THRESHOLD_SECONDS", "600")
    reset_config()
    request, record = _fence_request(tmp_path, State.RUNNING, 1, heartbeat_age=0)

    def the_first_worker_finishes() -> None:
        time.sleep(0.5)
        with session_scope() as session:
            session.get(TaskInstance, request.key).state = State.SUCCESS

    thread = threading.Thread(target=the_first_worker_finishes)
    thread.start()
    event = settle_started_try(request, redelivered=True, poll=0.1)
    thread.join()
    assert event is not None and (event.state, event.try_number) == (State.SUCCESS, 1)
    assert not record.exists()


# --- the broker --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_broker_down_at_start_scheduler_keeps_retrying_then_runs(cluster: Cluster,
                                                                 tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet
    broker = {"FLUX__CELERY__BROKER_URL": f"redis://127.0.0.1:{port}/0",
              "FLUX__CELERY__RESULT_BACKEND": f"redis://127.0.0.1:{port}/1"}
    record = recording_dag(cluster, "patient", "\n".join(
        f'PythonOperator(task_id="t{i}", python_callable=record)' for i in range(3)))
    sched = scheduler(cluster, **broker)
    message = f"cannot reach the Celery broker redis://127.0.0.1:{port}/0"
    assert wait_for(lambda: sched.text().count(message) >= 2, 60), sched.text()
    assert sched.alive()
    assert set(states("patient").values()) == {(State.QUEUED, 0)}  # kept, not lost
    late = RedisServer(tmp_path / "late-redis", port=port)
    late.start()
    try:
        cluster.worker("w1", "-c", "2", env=broker)
        assert wait_for(lambda: all_ended("patient", 3), 60), (states("patient"), sched.text())
        assert set(states("patient").values()) == {(State.SUCCESS, 1)}
        assert f"Celery broker redis://127.0.0.1:{port}/0 is back" in sched.text()
        assert sorted(r[0] for r in records(record)) == ["t0", "t1", "t2"]
        sched.stop()
        assert "Traceback" not in sched.text()
    finally:
        cluster.stop_all()
        late.stop()


@pytest.mark.slow
def test_broker_restarted_mid_run(cluster: Cluster, tmp_path: Path) -> None:
    """A Redis broker (with an append-only file) restarted while tasks run: nothing is lost,
    nothing runs twice."""
    broker = RedisServer(tmp_path / "aof-redis", persistent=True)
    broker.start()
    env = {"FLUX__CELERY__BROKER_URL": broker.url(0), "FLUX__CELERY__RESULT_BACKEND": broker.url(1),
           "FLUX__CELERY__VISIBILITY_TIMEOUT": "10"}
    try:
        record = recording_dag(cluster, "steady", "\n".join(
            f'PythonOperator(task_id="t{i:02d}", python_callable=record, '
            f'op_kwargs={{"seconds": 0.4}})' for i in range(30)))
        cluster.worker("w1", "-c", "2", env=env)
        cluster.worker("w2", "-c", "2", env=env)
        sched = scheduler(cluster, **env)
        assert wait_for(lambda: len(records(record)) >= 5, 60), sched.text()
        broker.stop()
        time.sleep(2)
        broker.start()
        assert wait_for(lambda: all_ended("steady", 30), 120), (states("steady"), sched.text())
        assert set(states("steady").values()) == {(State.SUCCESS, 1)}
        runs = Counter(r[0] for r in records(record))
        assert len(runs) == 30 and set(runs.values()) == {1}, runs
        sched.stop()
        assert "Traceback" not in sched.text()
    finally:
        cluster.stop_all()
        broker.stop()


def test_stopping_the_worker_with_sigterm_is_clean(cluster: Cluster) -> None:
    from flux.models import Job

    worker = cluster.worker("w1", "-c", "1")
    os.killpg(worker.process.pid, signal.SIGTERM)
    assert worker.process.wait(timeout=30) == 0, worker.text()
    with session_scope() as session:
        jobs = session.execute(select(Job.job_type, Job.state)).all()
    assert jobs == [("worker", "success")]
