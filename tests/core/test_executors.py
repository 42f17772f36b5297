"""Executors for real: choosing one by name, Sequential and Local (forked long-lived workers),
a worker killed under its task, hard timeouts, terminate, and the documented minimal executor."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from flux import DAG
from flux.builtin.local_executor import LocalExecutor
from flux.builtin.operators import PythonOperator
from flux.builtin.sequential_executor import SequentialExecutor
from flux.dates import UTC
from flux.db import session_scope
from flux.exceptions import ExecutorError
from flux.executors.base import (
    BaseExecutor,
    TaskEvent,
    TaskRequest,
    execute_request,
    handle_lost_try,
    register_dag,
)
from flux.executors.factory import make_executor
from flux.hookspecs import hookimpl
from flux.models import TaskInstance
from flux.plugins import PluginInfo, get_plugin_manager
from flux.state import State

DAY1 = datetime(2024, 1, 1, tzinfo=UTC)


# --- task bodies (module level: forked workers run them) ---------------------------------------

def note_pid(ti: Any, out: str) -> int:
    """Append ``task_id pid`` to ``out``; returns the pid."""
    with open(out, "a") as fh:
        fh.write(f"{ti.task_id} {os.getpid()}\n")
    return os.getpid()


def sleep_long(seconds: float = 60.0, started: str | None = None) -> None:
    if started:  # tell the test the task's own code runs now
        Path(started).touch()
    time.sleep(seconds)


def kill_own_worker_on_first_try(ti: Any, out: str) -> str:
    """SIGKILL the process running the task on try 1 (a crash the task cannot report)."""
    with open(out, "a") as fh:
        fh.write(f"{ti.try_number} {os.getpid()}\n")
    if ti.try_number == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


# --- helpers -----------------------------------------------------------------------------------

def make_dag(dag_id: str, **tasks: dict[str, Any]) -> DAG:
    """A daily DAG of independent PythonOperators, ``task_id=dict(python_callable=..., ...)``."""
    with DAG(dag_id, start_date=DAY1, schedule_interval="@daily") as dag:
        for task_id, kwargs in tasks.items():
            PythonOperator(task_id=task_id, **kwargs)
    register_dag(dag)
    return dag


def queue(dag: DAG, task_id: str, when: datetime = DAY1) -> TaskRequest:
    """Store the instance as ``queued`` (what the scheduler/backfill does) and make its request."""
    task = dag.get_task(task_id)
    with session_scope() as session:
        session.add(TaskInstance(dag_id=dag.dag_id, task_id=task_id, execution_date=when,
                                 state=State.QUEUED, try_number=0, max_tries=task.retries,
                                 operator=task.operator_name))
    return TaskRequest(dag_id=dag.dag_id, task_id=task_id, execution_date=when, try_number=1)


def drain(executor: BaseExecutor, limit: float = 120.0) -> list[TaskEvent]:
    """Collect events until the executor has no work left (bounded, so a bug cannot hang)."""
    events: list[TaskEvent] = []
    deadline = time.monotonic() + limit
    while executor.has_work:
        assert time.monotonic() < deadline, f"executor still busy: {executor.running}"
        events.extend(executor.get_events(timeout=0.5))
    return events


def stored(dag_id: str, task_id: str, when: datetime = DAY1) -> TaskInstance:
    with session_scope() as session:
        ti = session.get(TaskInstance, (dag_id, task_id, when))
        assert ti is not None
        return ti


def wait_for_state(dag_id: str, task_id: str, state: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while stored(dag_id, task_id).state != state:
        assert time.monotonic() < deadline, f"{task_id} never became {state}"
        time.sleep(0.05)


@pytest.fixture
def local() -> Iterator[LocalExecutor]:
    """A LocalExecutor with two workers, stopped after the test whatever happened."""
    executor = LocalExecutor(parallelism=2)
    yield executor
    if executor.workers:
        executor.terminate(grace=2)


# --- choosing an executor ----------------------------------------------------------------------

def test_make_executor_by_name_and_parallelism() -> None:
    local = make_executor("local", 3)
    assert isinstance(local, LocalExecutor) and local.parallelism == 3
    sequential = make_executor("sequential", 8)
    assert isinstance(sequential, SequentialExecutor)
    assert sequential.parallelism == 1  # one at a time, whatever was asked
    assert make_executor(sequential) is sequential


def test_make_executor_default_comes_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from flux import config

    assert isinstance(make_executor(), LocalExecutor)  # the seed's default
    monkeypatch.setenv("FLUX__CORE__EXECUTOR", "sequential")
    monkeypatch.setenv("FLUX__CORE__PARALLELISM", "7")
    config.reset_config()
    assert isinstance(make_executor(), SequentialExecutor)
    assert make_executor("local").parallelism == 7


def test_unknown_executor_lists_the_available_ones() -> None:
    with pytest.raises(ExecutorError) as info:
        make_executor("warp")
    message = str(info.value)
    assert "'warp'" in message and "local" in message and "sequential" in message
    assert "\n" not in message


@pytest.mark.parametrize("parallelism", [0, -2])
def test_parallelism_below_one_is_refused(parallelism: int) -> None:
    with pytest.raises(ExecutorError, match="at least 1"):
        make_executor("local", parallelism)
    with pytest.raises(ExecutorError, match="at least 1"):
        LocalExecutor(parallelism)


def test_queue_task_refuses_a_key_already_queued() -> None:
    executor = SequentialExecutor()
    request = TaskRequest("d", "t", DAY1, 1)
    executor.queue_task(request)
    with pytest.raises(ExecutorError, match="already queued"):
        executor.queue_task(TaskRequest("d", "t", DAY1, 2))
    assert executor.has_work and executor.open_slots == 1


def test_request_command_is_the_flux_run_line() -> None:
    request = TaskRequest("etl", "load", DAY1, 1, dag_file="dags/etl.py", mark_success=True)
    assert request.command() == ["flux", "run", "etl", "load", "2024-01-01T00:00:00",
                                 "-sd", "dags/etl.py", "--mark_success"]


# --- running -----------------------------------------------------------------------------------

def test_sequential_executor_runs_in_this_process(tmp_path: Path) -> None:
    out = tmp_path / "pids"
    dag = make_dag("seq_inline", a=dict(python_callable=note_pid, op_kwargs={"out": str(out)}),
                   b=dict(python_callable=note_pid, op_kwargs={"out": str(out)}))
    executor = SequentialExecutor()
    executor.queue_task(queue(dag, "a"))
    executor.queue_task(queue(dag, "b"))
    events = drain(executor)
    assert sorted((e.key[1], e.state, e.try_number) for e in events) == [
        ("a", State.SUCCESS, 1), ("b", State.SUCCESS, 1)]
    assert {line.split()[1] for line in out.read_text().splitlines()} == {str(os.getpid())}
    assert stored("seq_inline", "a").state == State.SUCCESS


def test_local_executor_reuses_its_long_lived_workers(tmp_path: Path,
                                                      local: LocalExecutor) -> None:
    out = tmp_path / "pids"
    tasks = {f"t{n}": dict(python_callable=note_pid, op_kwargs={"out": str(out)}) for n in range(8)}
    dag = make_dag("local_reuse", **tasks)
    for task_id in tasks:
        local.queue_task(queue(dag, task_id))
    events = drain(local)
    assert sorted(e.key[1] for e in events) == sorted(tasks)
    assert {e.state for e in events} == {State.SUCCESS}, [e.message for e in events]
    pids = {line.split()[1] for line in out.read_text().splitlines()}
    # no new interpreter per task: the eight tasks ran in the two forked workers
    assert pids == {str(w.process.pid) for w in local.workers}
    assert str(os.getpid()) not in pids
    local.end()
    assert local.workers == []


def test_local_executor_runs_at_most_parallelism_at_once(local: LocalExecutor) -> None:
    tasks = {f"s{n}": dict(python_callable=sleep_long, op_kwargs={"seconds": 0.3}) for n in range(6)}
    dag = make_dag("local_limit", **tasks)
    for task_id in tasks:
        local.queue_task(queue(dag, task_id))
    assert local.open_slots == 2
    events = drain(local)
    assert len(events) == 6
    with session_scope() as session:
        spans = session.execute(select(TaskInstance.start_date, TaskInstance.end_date)
                                .where(TaskInstance.dag_id == "local_limit")).all()
    assert max_overlap(spans) <= 2


def max_overlap(spans: list[Any]) -> int:
    """The largest number of (start, end) intervals open at one instant."""
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans],
                    key=lambda p: (p[0], p[1]))  # an end before a start at the same instant
    most = current = 0
    for _, step in points:
        current += step
        most = max(most, current)
    return most


def test_a_redelivered_request_never_runs_a_try_twice(tmp_path: Path) -> None:
    out = tmp_path / "pids"
    dag = make_dag("redelivered", a=dict(python_callable=note_pid, op_kwargs={"out": str(out)}))
    request = queue(dag, "a")
    assert execute_request(request).state == State.SUCCESS
    again = execute_request(request)
    assert again.state == State.SUCCESS and again.try_number == 1
    assert len(out.read_text().splitlines()) == 1


def test_a_request_for_an_unknown_dag_fails_the_queued_instance() -> None:
    dag = make_dag("known", a=dict(python_callable=sleep_long, op_kwargs={"seconds": 0}))
    request = queue(dag, "a")
    lost = TaskRequest("nowhere", "a", DAY1, 1)
    with session_scope() as session:
        session.add(TaskInstance(dag_id="nowhere", task_id="a", execution_date=DAY1,
                                 state=State.QUEUED, try_number=0, max_tries=0))
    event = execute_request(lost)
    assert event.state == State.FAILED and "nowhere" in event.message
    assert stored("nowhere", "a").state == State.FAILED
    assert stored("known", "a").state == State.QUEUED  # untouched
    assert execute_request(request).state == State.SUCCESS


# --- workers that die, hang or are stopped -----------------------------------------------------

@pytest.mark.parametrize("retries, expected", [(1, State.UP_FOR_RETRY), (0, State.FAILED)])
def test_a_killed_worker_fails_or_retries_its_try_and_is_replaced(
        tmp_path: Path, local: LocalExecutor, retries: int, expected: str) -> None:
    out = tmp_path / "tries"
    dag = make_dag(f"sigkill_{retries}", k=dict(python_callable=kill_own_worker_on_first_try,
                                                op_kwargs={"out": str(out)}, retries=retries,
                                                retry_delay=timedelta(seconds=30)))
    local.queue_task(queue(dag, "k"))
    local.start()
    before = {w.process.pid for w in local.workers}
    events = drain(local)
    assert [(e.state, e.try_number) for e in events] == [(expected, 1)]
    assert "died" in events[0].message and "-9" in events[0].message
    ti = stored(dag.dag_id, "k")
    assert (ti.state, ti.try_number) == (expected, 1)
    assert "died while running" in (ti.note or "")
    if expected == State.UP_FOR_RETRY:
        assert ti.next_try_at == ti.end_date + timedelta(seconds=30)
    killed = int(out.read_text().split()[1])
    after = {w.process.pid for w in local.workers}
    assert killed in before and killed not in after and len(after) == 2
    assert all(w.process.is_alive() for w in local.workers)


def test_a_try_past_its_hard_timeout_is_killed(local: LocalExecutor) -> None:
    dag = make_dag("hard_timeout", h=dict(python_callable=sleep_long))
    request = queue(dag, "h")
    local.queue_task(TaskRequest(**{**request.__dict__, "hard_timeout": 0.5}))
    events = drain(local, limit=30)
    assert [e.state for e in events] == [State.FAILED]
    assert stored("hard_timeout", "h").state == State.FAILED


def test_terminate_stops_running_tries_and_records_them(tmp_path: Path,
                                                        local: LocalExecutor) -> None:
    tasks = {name: dict(python_callable=sleep_long, op_kwargs={"started": str(tmp_path / name)})
             for name in "abc"}
    dag = make_dag("terminated", **tasks)
    for task_id in "abc":
        local.queue_task(queue(dag, task_id))
    local.get_events(timeout=0)
    deadline = time.monotonic() + 60
    while not ((tmp_path / "a").exists() and (tmp_path / "b").exists()):
        assert time.monotonic() < deadline, "the tasks never started"
        time.sleep(0.05)
    events = local.terminate(grace=10)
    assert sorted((e.key[1], e.state) for e in events) == [("a", State.FAILED),
                                                           ("b", State.FAILED)]
    assert local.workers == [] and not local.has_work
    for task_id in "ab":
        ti = stored("terminated", task_id)
        # the worker itself recorded the stop (SIGTERM reached the task, not a dead process)
        assert ti.state == State.FAILED and "TaskKilled: received signal SIGTERM" in (ti.note or "")
    assert stored("terminated", "c").state == State.QUEUED  # never started: the caller releases it


def test_handle_lost_try_leaves_a_finished_try_alone() -> None:
    dag = make_dag("lost", a=dict(python_callable=sleep_long, op_kwargs={"seconds": 0}, retries=2,
                                  retry_delay=timedelta(seconds=10),
                                  retry_exponential_backoff=True))
    request = queue(dag, "a")
    # queued but never started: counted as a failed try
    assert handle_lost_try(request.key, 1, "worker gone") == State.UP_FOR_RETRY
    ti = stored("lost", "a")
    assert ti.try_number == 1 and ti.next_try_at == ti.end_date + timedelta(seconds=10)
    with session_scope() as session:
        session.get(TaskInstance, request.key).state = State.SUCCESS
    assert handle_lost_try(request.key, 1, "late news") == State.SUCCESS
    assert stored("lost", "a").note == "worker gone"
    assert handle_lost_try(("lost", "missing", DAY1), 1, "?") is None


# --- the documented minimal executor works with a backfill -------------------------------------

class InlineExecutor(BaseExecutor):
    """The executor of BaseExecutor's docstring."""

    executor_name: ClassVar[str] = "inline"
    shares_memory: ClassVar[bool] = True

    def get_events(self, timeout: float = 0.0) -> list[TaskEvent]:
        return [self.finished(execute_request(r)) for r in self.take_pending()]


class InlinePlugin:
    @hookimpl
    def flux_executors(self) -> list[Any]:
        return [InlineExecutor]


def test_a_plugin_executor_is_chosen_by_name_and_runs_a_backfill(tmp_path: Path) -> None:
    manager = get_plugin_manager()
    manager.register(InlinePlugin(), PluginInfo("inline", "tests.inline", "tests-inline", "1.0"))
    try:
        out = tmp_path / "pids"
        with DAG("inline_dag", start_date=DAY1, schedule_interval="@daily") as dag:
            first = PythonOperator(task_id="first", python_callable=note_pid,
                                   op_kwargs={"out": str(out)})
            first >> PythonOperator(task_id="second", python_callable=note_pid,
                                    op_kwargs={"out": str(out)})
        assert isinstance(make_executor("inline"), InlineExecutor)
        result = dag.run(start_date=DAY1, end_date=DAY1 + timedelta(days=1), executor="inline")
        assert result.succeeded and result.counts == {State.SUCCESS: 4}
        assert sorted(line.split()[0] for line in out.read_text().splitlines()) == [
            "first", "first", "second", "second"]
    finally:
        manager.unregister("inline")
