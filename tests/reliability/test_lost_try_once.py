"""A lost try is handled once, even when several processes notice it at the same moment.

A LocalExecutor parent that saw its worker die, and the zombie check of one or more schedulers,
may all call ``handle_lost_try`` for the same try. The guarded state change lets exactly one of
them move the instance on; only that one may run the failure/retry callback. Here four real
processes race for each lost try, released together by a barrier.
"""

from __future__ import annotations

import multiprocessing
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from flux import DAG
from flux.builtin.operators import PythonOperator
from flux.db import session_scope
from flux.executors.base import handle_lost_try, register_dag
from flux.models import TaskInstance
from flux.state import State

from .conftest import DAY1, lines, task_instance

RACERS = 4
ROUNDS = 8


def count_callback(context: dict[str, Any]) -> None:
    with open(context["task"].params["out"], "a", encoding="utf-8") as handle:
        handle.write(f"{context['execution_date'].isoformat()} {os.getpid()}\n")


def race(barrier: Any, key: tuple[str, str, Any], results: Any) -> None:
    barrier.wait()
    results.put(handle_lost_try(key, 1, "lost in a race"))


def test_a_lost_try_noticed_by_several_processes_runs_one_callback(tmp_path: Path) -> None:
    out = tmp_path / "callbacks.txt"
    with DAG("racy", start_date=DAY1, schedule_interval="@daily") as dag:
        PythonOperator(task_id="lost", python_callable=lambda: None, retries=1,
                       retry_delay=timedelta(0), params={"out": str(out)},
                       on_retry_callback=count_callback, on_failure_callback=count_callback)
    register_dag(dag)  # forked racers find the task (and its callbacks) here
    context = multiprocessing.get_context("fork")
    dates = [DAY1 + timedelta(days=n) for n in range(ROUNDS)]
    for when in dates:
        with session_scope() as session:
            session.add(TaskInstance(dag_id="racy", task_id="lost", execution_date=when,
                                     state=State.RUNNING, try_number=1, max_tries=1,
                                     start_date=when, heartbeat=when, pid=999999))
        barrier = context.Barrier(RACERS)
        results = context.Queue()
        racers = [context.Process(target=race, args=(barrier, ("racy", "lost", when), results))
                  for _ in range(RACERS)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=60)
            assert racer.exitcode == 0
        assert task_instance("racy", "lost", when).state == State.UP_FOR_RETRY
    calls = [line.split()[0] for line in lines(out)]
    assert sorted(calls) == sorted(when.isoformat() for when in dates), (
        "a lost try's callback ran more (or less) than once")
