"""Random DAGs, random failures, retries and trigger rules, run by a real backfill.

Hypothesis draws a DAG of up to 30 tasks (edges only from earlier to later tasks, so it is acyclic),
a trigger rule and a number of retries per task, and what each try does (succeed, fail, or skip
itself), fixed per task and try in a table. The backfill runs it with the SequentialExecutor and
with LocalExecutor workers. Then, for every example:

* every task instance ends in a finished state;
* no try runs twice, and the tries of a task are 1, 2, ... with none missing;
* no try starts before the upstream tasks its trigger rule waits for have ended;
* the final states are those of the model below, a plain simulation of trigger rules and retries.

The examples are derandomized (the same 25 every run), so the test is stable.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from flux import DAG
from flux.builtin.operators import PythonOperator
from flux.db import session_scope
from flux.exceptions import TaskSkipped
from flux.models import TaskInstance
from flux.state import State, TriggerRule

from .conftest import DAY1, lines

MAX_TASKS = 30
MAX_UPSTREAM = 3
RULES = sorted(TriggerRule.ALL)
#: what one try does; succeeding is likelier, so that long chains get to run
TRY_OUTCOMES = ["ok", "ok", "ok", "fail", "fail", "skip"]
FAILED_LIKE = {State.FAILED, State.UPSTREAM_FAILED}


@dataclass(frozen=True)
class TaskSpec:
    """One task of a drawn DAG: its upstream tasks, rule, and what each of its tries does."""

    name: str
    upstream: tuple[str, ...]
    rule: str
    tries: tuple[str, ...]  # one entry per allowed try (retries + 1)

    @property
    def retries(self) -> int:
        return len(self.tries) - 1


@st.composite
def dag_specs(draw: Any) -> list[TaskSpec]:
    count = draw(st.integers(min_value=1, max_value=MAX_TASKS))
    specs: list[TaskSpec] = []
    for index in range(count):
        upstream = draw(st.sets(st.integers(min_value=0, max_value=index - 1),
                                max_size=min(MAX_UPSTREAM, index))) if index else set()
        retries = draw(st.integers(min_value=0, max_value=2))
        specs.append(TaskSpec(
            name=f"t{index:02d}",
            upstream=tuple(f"t{i:02d}" for i in sorted(upstream)),
            rule=draw(st.sampled_from(RULES)),
            tries=tuple(draw(st.lists(st.sampled_from(TRY_OUTCOMES),
                                      min_size=retries + 1, max_size=retries + 1))),
        ))
    return specs


# --- the model -------------------------------------------------------------------------------------

def rule_allows(rule: str, upstream: list[str]) -> set[str]:
    """What the rule makes of a task whose upstream tasks ended in ``upstream``: ``{"run"}`` or
    the state it gets without running.

    Two states are possible in one case only: all_success with both a failed and a skipped
    upstream task becomes upstream_failed or skipped, depending on which of them ended first
    (the rule decides as soon as one of them ends).
    """
    if rule == TriggerRule.ALWAYS or not upstream:
        return {"run"}
    failed = sum(state in FAILED_LIKE for state in upstream)
    succeeded = sum(state == State.SUCCESS for state in upstream)
    skipped = sum(state == State.SKIPPED for state in upstream)
    if rule == TriggerRule.ALL_SUCCESS:
        if failed and skipped:
            return {State.UPSTREAM_FAILED, State.SKIPPED}
        if failed:
            return {State.UPSTREAM_FAILED}
        return {State.SKIPPED} if skipped else {"run"}
    if rule == TriggerRule.ALL_FAILED:
        return {"run"} if failed == len(upstream) else {State.SKIPPED}
    if rule == TriggerRule.ALL_DONE:
        return {"run"}
    if rule == TriggerRule.ONE_SUCCESS:
        if succeeded:
            return {"run"}
        return {State.UPSTREAM_FAILED} if failed else {State.SKIPPED}
    if rule == TriggerRule.ONE_FAILED:
        return {"run"} if failed else {State.SKIPPED}
    if rule == TriggerRule.NONE_FAILED:
        return {State.UPSTREAM_FAILED} if failed else {"run"}
    raise AssertionError(f"the model does not know rule {rule}")


def run_outcome(spec: TaskSpec) -> tuple[str, int]:
    """The final state of a task that runs, and how many tries it takes."""
    for number, does in enumerate(spec.tries, start=1):
        if does == "ok":
            return State.SUCCESS, number
        if does == "skip":
            return State.SKIPPED, number
    return State.FAILED, len(spec.tries)


def check_against_model(specs: list[TaskSpec], actual: dict[str, str | None]) -> dict[str, int]:
    """Walk the DAG in order, as the model runs it; the one free choice is taken from ``actual``.

    Returns the number of tries the model expects of each task.
    """
    expected_tries: dict[str, int] = {}
    for spec in specs:
        allowed = rule_allows(spec.rule, [actual[name] for name in spec.upstream])
        if allowed == {"run"}:
            state, tries = run_outcome(spec)
            assert actual[spec.name] == state, (spec, actual[spec.name], state)
            expected_tries[spec.name] = tries
        else:
            assert actual[spec.name] in allowed, (spec, actual[spec.name], allowed)
            expected_tries[spec.name] = 0
    return expected_tries


# --- the run ---------------------------------------------------------------------------------------

def behave(ti: Any, table: list[str], out: str) -> str:
    """The task body: note the try (and when it started), then do what the table says."""
    with open(out, "a", encoding="utf-8") as handle:
        handle.write(f"{ti.task_id}:{ti.try_number}:{time.time():.6f}\n")
    does = table[ti.try_number - 1]
    if does == "fail":
        raise ValueError(f"try {ti.try_number} fails, as the table says")
    if does == "skip":
        raise TaskSkipped("the table says skip")
    return does


def build_dag(dag_id: str, specs: list[TaskSpec], out: Path) -> DAG:
    with DAG(dag_id, start_date=DAY1, schedule_interval="@daily") as dag:
        tasks = {
            spec.name: PythonOperator(
                task_id=spec.name, python_callable=behave, trigger_rule=spec.rule,
                retries=spec.retries, retry_delay=timedelta(0),
                op_kwargs={"table": list(spec.tries), "out": str(out)})
            for spec in specs
        }
        for spec in specs:
            for name in spec.upstream:
                tasks[name] >> tasks[spec.name]
    return dag


def stored_instances(dag_id: str) -> dict[str, TaskInstance]:
    with session_scope() as session:
        rows = session.execute(select(TaskInstance).where(TaskInstance.dag_id == dag_id)).scalars().all()
        for row in rows:
            session.expunge(row)
    return {row.task_id: row for row in rows}


def waited_for(spec: TaskSpec, instances: dict[str, TaskInstance]) -> Iterable[list[str]]:
    """Groups of upstream tasks of which at least one must have ended before ``spec`` may start."""
    if spec.rule == TriggerRule.ALWAYS or not spec.upstream:
        return []
    if spec.rule == TriggerRule.ONE_SUCCESS:
        return [[n for n in spec.upstream if instances[n].state == State.SUCCESS]]
    if spec.rule == TriggerRule.ONE_FAILED:
        return [[n for n in spec.upstream if instances[n].state in FAILED_LIKE]]
    return [[name] for name in spec.upstream]  # every one of them


_examples = itertools.count()


@pytest.mark.parametrize("executor", ["sequential", "local"])
@settings(max_examples=25, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(specs=dag_specs())
def test_random_dags_end_as_the_model_says(executor: str, specs: list[TaskSpec], tmp_path: Path) -> None:
    dag_id = f"prop_{executor}_{next(_examples)}"
    out = tmp_path / f"{dag_id}.tries"
    dag = build_dag(dag_id, specs, out)
    dag.run(start_date=DAY1, end_date=DAY1, executor=executor, parallelism=2)

    instances = stored_instances(dag_id)
    assert sorted(instances) == sorted(spec.name for spec in specs)
    for name, ti in instances.items():
        assert ti.state in State.FINISHED, (name, ti.state)
    actual = {name: ti.state for name, ti in instances.items()}
    expected_tries = check_against_model(specs, actual)

    records = [line.split(":", 2) for line in lines(out)]
    seen = [(name, int(number)) for name, number, _ in records]
    assert len(seen) == len(set(seen)), "a try ran twice"
    for spec in specs:
        numbers = sorted(number for name, number in seen if name == spec.name)
        assert numbers == list(range(1, expected_tries[spec.name] + 1)), (spec, numbers)
        if numbers:
            assert instances[spec.name].try_number == numbers[-1]

    for name, number, started in records:
        spec = next(s for s in specs if s.name == name)
        began = datetime.fromtimestamp(float(started), tz=DAY1.tzinfo)
        for group in waited_for(spec, instances):
            ended = [instances[up].end_date for up in group]
            assert group and any(end is not None and end <= began for end in ended), (
                f"{name} try {number} started at {began} before {group} ended ({ended})")
