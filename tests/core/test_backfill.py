"""Backfills for real (forked LocalExecutor workers, the metadata DB): order, limits, retries,
timeouts, trigger rules, depends_on_past, dead workers, re-runs; DAGs defined in this module."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from flux import DAG
from flux.backfill import BackfillResult
from flux.builtin.operators import PythonOperator
from flux.dates import UTC
from flux.db import session_scope
from flux.exceptions import DagDefinitionError, ExecutorError
from flux.models import DagRun, Job, Pool, TaskInstance
from flux.state import DagRunState, State, TriggerRule

DAY1 = datetime(2024, 1, 1, tzinfo=UTC)
DAY2, DAY3, DAY4 = (DAY1 + timedelta(days=n) for n in (1, 2, 3))


# --- task bodies (module level, so the forked workers run exactly these) -------------------------

def nap(seconds: float = 0.0) -> None:
    time.sleep(seconds)


def fail() -> None:
    raise ValueError("boom")


def fail_on(ds: str, bad_ds: str) -> None:
    if ds == bad_ds:
        raise ValueError(f"bad day {ds}")


def fail_while_exists(marker: str) -> None:
    if os.path.exists(marker):
        raise ValueError("marker present")


def append(out: str, text: str) -> None:
    with open(out, "a") as fh:
        fh.write(text + "\n")


def record(ti: Any, out: str) -> None:
    append(out, f"{ti.task_id} {ti.try_number} {os.getpid()}")


def fail_until(ti: Any, out: str, succeed_on: int) -> None:
    append(out, f"start {ti.try_number} {ti.start_date.isoformat()}")
    if ti.try_number < succeed_on:
        raise ValueError(f"try {ti.try_number} fails")


def note_retry(context: dict[str, Any]) -> None:
    """on_retry_callback: the wait chosen before the next try, and when that try may start."""
    ti = context["ti"]
    out = context["params"]["out"]
    wait = (ti.next_try_at - ti.end_date).total_seconds()
    append(out, f"retry {ti.try_number} {wait} {ti.next_try_at.isoformat()}")


def kill_worker_on_first_try(ti: Any, out: str) -> str:
    append(out, f"try {ti.try_number} {os.getpid()}")
    if ti.try_number == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return "done"


def lost_callback(context: dict[str, Any]) -> None:
    """on_retry/on_failure callback; for a dead worker the backfill process runs it."""
    append(context["task"].params["out"], f"callback {os.getpid()} {context.get('reason')}")


# --- helpers -----------------------------------------------------------------------------------

def dag_of(dag_id: str, **dag_kwargs: Any) -> DAG:
    return DAG(dag_id, start_date=DAY1, schedule_interval="@daily", **dag_kwargs)


def py(task_id: str, func: Any = nap, **kwargs: Any) -> PythonOperator:
    return PythonOperator(task_id=task_id, python_callable=func, **kwargs)


def run(dag: DAG, start: datetime = DAY1, end: datetime = DAY1, **kwargs: Any) -> BackfillResult:
    kwargs.setdefault("executor", "local")
    kwargs.setdefault("parallelism", 2)
    return dag.run(start_date=start, end_date=end, **kwargs)


def instances(dag_id: str) -> dict[tuple[str, datetime], TaskInstance]:
    with session_scope() as session:
        rows = session.execute(select(TaskInstance).where(TaskInstance.dag_id == dag_id)).scalars()
        return {(ti.task_id, ti.execution_date): ti for ti in rows}


def states(dag_id: str, when: datetime = DAY1) -> dict[str, str | None]:
    return {task_id: ti.state for (task_id, date), ti in instances(dag_id).items() if date == when}


def max_overlap(spans: list[tuple[datetime, datetime]]) -> int:
    """The largest number of (start, end) intervals open at one instant (ends sort first)."""
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = current = 0
    for _, step in points:
        current += step
        most = max(most, current)
    return most


def assert_nothing_left_in_flight(dag_id: str) -> None:
    left = {k: ti.state for k, ti in instances(dag_id).items()
            if ti.state in (State.RUNNING, State.QUEUED)}
    assert left == {}


# --- order and limits --------------------------------------------------------------------------

@pytest.mark.parametrize("executor", ["local", "sequential"])
def test_dependencies_and_dates_run_in_order_with_one_active_run(executor: str) -> None:
    with dag_of("ordered", max_active_runs=1) as dag:
        a, b, c = py("a"), py("b"), py("c")
        a >> b >> c
    result = run(dag, DAY1, DAY3, executor=executor)
    assert result.succeeded and result.counts == {State.SUCCESS: 9} and result.ran == 9
    tis = instances("ordered")
    for when in (DAY1, DAY2, DAY3):
        assert tis[("a", when)].end_date <= tis[("b", when)].start_date
        assert tis[("b", when)].end_date <= tis[("c", when)].start_date
    for earlier, later in ((DAY1, DAY2), (DAY2, DAY3)):
        assert max(tis[(t, earlier)].end_date for t in "abc") <= \
            min(tis[(t, later)].start_date for t in "abc")
    with session_scope() as session:
        runs = session.execute(select(DagRun.execution_date, DagRun.state, DagRun.run_type)
                               .where(DagRun.dag_id == "ordered")
                               .order_by(DagRun.execution_date)).all()
    assert runs == [(d, DagRunState.SUCCESS, "backfill") for d in (DAY1, DAY2, DAY3)]


def test_parallelism_two_means_at_most_two_at_once_in_two_workers() -> None:
    with dag_of("parallel") as dag:
        for n in range(6):
            py(f"t{n}", op_kwargs={"seconds": 0.3})
    result = run(dag, parallelism=2)
    assert result.succeeded
    tis = instances("parallel").values()
    assert max_overlap([(ti.start_date, ti.end_date) for ti in tis]) <= 2
    # long-lived workers: six tasks, two forked processes, none of them this one
    pids = {ti.pid for ti in tis}
    assert len(pids) == 2 and os.getpid() not in pids


def test_max_active_runs_bounds_the_dates_in_progress() -> None:
    with dag_of("two_runs", max_active_runs=2) as dag:
        py("a", op_kwargs={"seconds": 0.1}) >> py("b", op_kwargs={"seconds": 0.1})
    assert run(dag, DAY1, DAY4, parallelism=4).succeeded
    tis = instances("two_runs")
    spans = [(min(tis[(t, d)].start_date for t in "ab"), max(tis[(t, d)].end_date for t in "ab"))
             for d in (DAY1, DAY2, DAY3, DAY4)]
    assert max_overlap(spans) <= 2


def test_a_pool_of_one_slot_never_runs_two_of_its_tasks_at_once() -> None:
    with session_scope() as session:
        session.add(Pool(pool="single", slots=1, description="one at a time"))
    with dag_of("pooled") as dag:
        for n in range(4):
            py(f"p{n}", op_kwargs={"seconds": 0.2}, pool="single")
        py("free", op_kwargs={"seconds": 0.2})
    result = run(dag, parallelism=4)
    assert result.succeeded and result.counts == {State.SUCCESS: 5}
    tis = instances("pooled")
    assert max_overlap([(tis[(f"p{n}", DAY1)].start_date, tis[(f"p{n}", DAY1)].end_date)
                        for n in range(4)]) == 1


def test_a_missing_pool_is_a_clear_error_before_anything_runs() -> None:
    with dag_of("no_pool") as dag:
        py("p", pool="nonexistent")
    with pytest.raises(DagDefinitionError, match="flux pools set nonexistent"):
        run(dag)
    assert instances("no_pool") == {}  # nothing was stored either


# --- failures, retries, timeouts ---------------------------------------------------------------

def test_depends_on_past_failure_blocks_the_next_day() -> None:
    with dag_of("past") as dag:
        py("p", fail_on, op_kwargs={"bad_ds": "2024-01-02"}, depends_on_past=True)
    result = run(dag, DAY1, DAY3)
    assert not result.succeeded
    assert result.counts == {State.SUCCESS: 1, State.FAILED: 1, "none": 1}
    assert result.failed == [("past", "p", DAY2)]
    assert result.deadlocked == [("past", "p", DAY3)]
    assert "Could not run (dependencies never met): p 2024-01-03" in str(result)
    tis = instances("past")
    assert tis[("p", DAY3)].state is None and tis[("p", DAY3)].try_number == 0


def test_retries_wait_with_exponential_backoff_capped(tmp_path: Path) -> None:
    out = tmp_path / "tries"
    with dag_of("backoff") as dag:
        py("flaky", fail_until, op_kwargs={"out": str(out), "succeed_on": 5}, retries=4,
           retry_delay=timedelta(seconds=1), retry_exponential_backoff=True,
           max_retry_delay=timedelta(seconds=4), on_retry_callback=note_retry,
           params={"out": str(out)})
    result = run(dag)
    assert result.succeeded
    ti = instances("backoff")[("flaky", DAY1)]
    assert (ti.state, ti.try_number, ti.max_tries) == (State.SUCCESS, 5, 4)
    lines = [line.split() for line in out.read_text().splitlines()]
    retries = [(int(n), float(wait), datetime.fromisoformat(at)) for kind, n, wait, at in
               (line for line in lines if line[0] == "retry")]
    assert [(n, wait) for n, wait, _ in retries] == [(1, 1.0), (2, 2.0), (3, 4.0), (4, 4.0)]
    starts = {int(n): datetime.fromisoformat(at) for kind, n, at in
              (line for line in lines if line[0] == "start")}
    assert sorted(starts) == [1, 2, 3, 4, 5]
    for n, _, next_try_at in retries:
        assert starts[n + 1] >= next_try_at  # no try starts before its retry delay is over


@pytest.mark.parametrize("executor", ["local", "sequential"])
def test_retries_are_bounded(tmp_path: Path, executor: str) -> None:
    out = tmp_path / "tries"
    with dag_of(f"bounded_{executor}") as dag:
        py("always", fail_until, op_kwargs={"out": str(out), "succeed_on": 99}, retries=2,
           retry_delay=timedelta(0))
    result = run(dag, executor=executor)
    assert result.failed == [(dag.dag_id, "always", DAY1)]
    ti = instances(dag.dag_id)[("always", DAY1)]
    assert (ti.state, ti.try_number, ti.max_tries) == (State.FAILED, 3, 2)
    assert len(out.read_text().splitlines()) == 3


def test_execution_timeout_fails_the_try() -> None:
    with dag_of("timeout") as dag:
        py("slow", op_kwargs={"seconds": 60}, execution_timeout=timedelta(seconds=1)) >> py("after")
    result = run(dag)
    assert result.failed == [("timeout", "slow", DAY1), ("timeout", "after", DAY1)]
    ti = instances("timeout")[("slow", DAY1)]
    assert ti.state == State.FAILED and "TaskTimeout" in (ti.note or "")
    assert ti.duration is not None and ti.duration < 60
    assert states("timeout")["after"] == State.UPSTREAM_FAILED


def test_upstream_failed_reaches_the_end_of_a_chain() -> None:
    with dag_of("long_chain") as dag:
        first = py("a", fail)
        first >> py("b") >> py("c") >> py("d")
    result = run(dag)
    assert states("long_chain") == {"a": State.FAILED, "b": State.UPSTREAM_FAILED,
                                    "c": State.UPSTREAM_FAILED, "d": State.UPSTREAM_FAILED}
    assert not result.deadlocked


def test_trigger_rules_downstream_of_a_failure() -> None:
    with dag_of("rules") as dag:
        broken, fine = py("broken", fail), py("fine")
        rules = {
            "on_failure": TriggerRule.ONE_FAILED,
            "cleanup": TriggerRule.ALL_DONE,
            "normal": TriggerRule.ALL_SUCCESS,
            "any_ok": TriggerRule.ONE_SUCCESS,
            "guarded": TriggerRule.NONE_FAILED,
            "only_failures": TriggerRule.ALL_FAILED,
        }
        for task_id, rule in rules.items():
            [broken, fine] >> py(task_id, trigger_rule=rule)
        dag.get_task("normal") >> py("after_normal")
        py("lone_failure_ok", trigger_rule=TriggerRule.ONE_SUCCESS).set_upstream(broken)
    result = run(dag)
    assert states("rules") == {
        "broken": State.FAILED, "fine": State.SUCCESS,
        "on_failure": State.SUCCESS, "cleanup": State.SUCCESS, "any_ok": State.SUCCESS,
        "normal": State.UPSTREAM_FAILED, "after_normal": State.UPSTREAM_FAILED,
        "guarded": State.UPSTREAM_FAILED, "only_failures": State.SKIPPED,
        "lone_failure_ok": State.UPSTREAM_FAILED,
    }
    assert not result.succeeded
    assert ("rules", "broken", DAY1) in result.failed
    assert ("rules", "on_failure", DAY1) not in result.failed
    assert instances("rules")[("normal", DAY1)].try_number == 0  # decided, never run


@pytest.mark.parametrize("retries", [1, 0])
def test_a_task_that_kills_its_worker(tmp_path: Path, flux_env: Path, retries: int) -> None:
    out = tmp_path / "events"
    with dag_of(f"suicide_{retries}") as dag:
        py("k", kill_worker_on_first_try, op_kwargs={"out": str(out)}, retries=retries,
           retry_delay=timedelta(0), params={"out": str(out)},
           on_retry_callback=lost_callback, on_failure_callback=lost_callback) >> py("next")
    result = run(dag)
    ti = instances(dag.dag_id)[("k", DAY1)]
    lines = out.read_text().splitlines()
    tries = [line.split() for line in lines if line.startswith("try ")]
    callbacks = [line for line in lines if line.startswith("callback ")]
    # the try the worker died in is recorded, and its callback ran in the backfill process
    assert len(callbacks) == 1 and f"callback {os.getpid()} worker process" in callbacks[0]
    assert "died while running the task (exit code -9)" in callbacks[0]
    if retries:
        assert result.succeeded
        assert (ti.state, ti.try_number) == (State.SUCCESS, 2)
        assert [t[1] for t in tries] == ["1", "2"] and tries[0][2] != tries[1][2]
        assert states(dag.dag_id)["next"] == State.SUCCESS
    else:
        assert result.failed == [(dag.dag_id, "k", DAY1), (dag.dag_id, "next", DAY1)]
        assert (ti.state, ti.try_number) == (State.FAILED, 1)
        assert "died while running" in (ti.note or "")
        assert [t[1] for t in tries] == ["1"]
    log_dir = flux_env / "logs" / dag.dag_id / "k"
    assert len(list(log_dir.rglob("1.log"))) == 1  # the dead try's own log is kept
    assert_nothing_left_in_flight(dag.dag_id)


# --- re-runs, options --------------------------------------------------------------------------

def test_a_completed_backfill_has_nothing_to_do(tmp_path: Path) -> None:
    out = tmp_path / "ran"
    with dag_of("again") as dag:
        py("a", record, op_kwargs={"out": str(out)})
    assert run(dag, DAY1, DAY2).ran == 2
    second = run(dag, DAY1, DAY2)
    assert second.nothing_to_do and second.succeeded and second.ran == 2
    assert second.counts == {State.SUCCESS: 2}
    assert len(out.read_text().splitlines()) == 2


def test_a_longer_range_runs_only_the_new_dates(tmp_path: Path) -> None:
    out = tmp_path / "ran"
    with dag_of("extend") as dag:
        py("a", record, op_kwargs={"out": str(out)})
    run(dag, DAY1, DAY2)
    result = run(dag, DAY1, DAY3)
    assert result.succeeded and result.counts == {State.SUCCESS: 3}
    assert len(out.read_text().splitlines()) == 3


def test_reset_failed_runs_failed_instances_again(tmp_path: Path) -> None:
    marker = tmp_path / "broken"
    marker.touch()
    with dag_of("reset") as dag:
        py("a", fail_while_exists, op_kwargs={"marker": str(marker)}) >> py("b")
    first = run(dag)
    assert states("reset") == {"a": State.FAILED, "b": State.UPSTREAM_FAILED}
    assert not first.succeeded
    marker.unlink()
    unchanged = run(dag)
    assert unchanged.nothing_to_do and not unchanged.succeeded
    fixed = run(dag, reset_failed=True)
    assert fixed.succeeded and states("reset") == {"a": State.SUCCESS, "b": State.SUCCESS}
    assert instances("reset")[("a", DAY1)].try_number == 2


def test_mark_success_runs_nothing(tmp_path: Path) -> None:
    out = tmp_path / "ran"
    with dag_of("marked") as dag:
        py("a", record, op_kwargs={"out": str(out)}) >> py("b", record, op_kwargs={"out": str(out)})
    result = run(dag, DAY1, DAY2, mark_success=True)
    assert result.succeeded and result.counts == {State.SUCCESS: 4}
    assert not out.exists()
    assert {ti.try_number for ti in instances("marked").values()} == {0}


def test_dry_run_prints_the_commands_and_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with dag_of("dry") as dag:
        py("a") >> py("b")
    result = run(dag, DAY1, DAY2, dry_run=True)
    printed = capsys.readouterr().out.splitlines()
    # each line is a command that runs that instance from anywhere: it names the DAG file
    assert f"flux run dry a 2024-01-01T00:00:00 -sd {dag.fileloc}" in printed
    assert f"flux run dry b 2024-01-02T00:00:00 -sd {dag.fileloc}" in printed
    assert len(printed) == 4
    assert result.counts == {"none": 4}
    assert instances("dry") == {}


def test_task_regex_with_upstream(tmp_path: Path) -> None:
    with dag_of("regex") as dag:
        py("extract") >> py("load") >> py("report")
        py("other")
    assert run(dag, task_regex="^load$", include_upstream=True).succeeded
    assert states("regex") == {"extract": State.SUCCESS, "load": State.SUCCESS}
    with pytest.raises(DagDefinitionError, match="matches no task"):
        run(dag, task_regex="^nothing$")


def test_bad_arguments_are_refused_before_anything_runs() -> None:
    with dag_of("bad_args") as dag:
        py("a")
    with pytest.raises(DagDefinitionError, match="is after end date"):
        run(dag, DAY2, DAY1)
    with pytest.raises(ExecutorError, match=r"available: .*local"):
        run(dag, executor="nope")
    with pytest.raises(ExecutorError, match="at least 1"):
        run(dag, parallelism=0)
    assert instances("bad_args") == {}


def test_dag_run_from_this_module_runs_in_forked_workers() -> None:
    with dag_of("in_module") as dag:
        py("a") >> py("b")
    # the DAG has no file of its own that a worker could import: forked workers inherit it
    result = dag.run(start_date=DAY1, end_date=DAY2, executor="local", parallelism=2)
    assert isinstance(result, BackfillResult) and result.succeeded
    tis = instances("in_module").values()
    assert {ti.state for ti in tis} == {State.SUCCESS} and len(tis) == 4
    assert os.getpid() not in {ti.pid for ti in tis}
    with session_scope() as session:
        job = session.execute(select(Job).where(Job.job_type == "backfill")).scalar_one()
    assert (job.dag_id, job.state, job.pid) == ("in_module", "success", os.getpid())
    assert {ti.job_id for ti in tis} == {job.id}


def test_summary_lists_states_and_failures() -> None:
    with dag_of("summary") as dag:
        py("bad", fail) >> py("after")
        py("good")
    text = str(run(dag))
    assert text.splitlines()[0] == "Run summary: summary from 2024-01-01 00:00:00 to 2024-01-01 00:00:00"
    for row in ("failed", "upstream_failed", "success"):
        assert any(line.split()[:2] == [row, "1"] for line in text.splitlines())
    assert "Failed: bad 2024-01-01" in text


def test_dag_run_narrates_what_it_queues_and_ends_with_a_summary(caplog: pytest.LogCaptureFixture) -> None:
    """As in the seed tutorial: with INFO logging on, ``dag.run()`` logs one ``Adding to queue``
    line per task instance (the equivalent ``flux run`` command) and then the run summary."""
    dag = dag_of("narrated")
    with dag:
        first = py("first")
        second = py("second")
        second.set_upstream(first)
    with caplog.at_level("INFO", logger="flux.backfill"):
        result = dag.run(start_date=DAY1, end_date=DAY1, executor="sequential")
    assert result.succeeded
    messages = [r.getMessage() for r in caplog.records if r.name == "flux.backfill"]
    queued = [m for m in messages if m.startswith("Adding to queue: ")]
    assert queued == ["Adding to queue: flux run narrated first 2024-01-01T00:00:00",
                      "Adding to queue: flux run narrated second 2024-01-01T00:00:00"]
    assert messages[-1].startswith("Run summary: narrated from 2024-01-01")


def test_an_instance_running_elsewhere_is_waited_for_then_its_downstream_runs() -> None:
    """Another process (a scheduler, a second backfill) runs ``first``: the backfill waits for it
    instead of ending with ``second`` listed as never met."""
    import threading

    from flux.dates import utcnow

    dag = dag_of("shared_run")
    with dag:
        first = py("first")
        second = py("second")
        first >> second
    with session_scope() as session:
        session.add(TaskInstance(dag_id="shared_run", task_id="first", execution_date=DAY1,
                                 state=State.RUNNING, try_number=1, max_tries=1, pid=os.getpid(),
                                 hostname="elsewhere", start_date=utcnow(), heartbeat=utcnow()))

    def finish_elsewhere() -> None:
        time.sleep(1.5)
        with session_scope() as session:
            ti = session.get(TaskInstance, ("shared_run", "first", DAY1))
            ti.state, ti.end_date = State.SUCCESS, utcnow()

    finisher = threading.Thread(target=finish_elsewhere)
    finisher.start()
    try:
        result = dag.run(start_date=DAY1, end_date=DAY1, executor="sequential")
    finally:
        finisher.join()
    assert result.succeeded, str(result)
    states = {task: ti.state for (task, _), ti in instances("shared_run").items()}
    assert states == {"first": State.SUCCESS, "second": State.SUCCESS}
    assert instances("shared_run")[("first", DAY1)].try_number == 1  # not run again here
