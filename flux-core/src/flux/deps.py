"""Whether a task instance may run now: trigger rules, depends_on_past, retry delays.

:func:`trigger_rule_outcome` is a pure function so that the backfill and the scheduler can decide
for many task instances from states they already hold, without a query per instance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flux.state import State, TriggerRule

if TYPE_CHECKING:
    from flux.baseoperator import BaseOperator
    from flux.models import TaskInstance

RUN = "run"
WAIT = "wait"

_FAILED = frozenset({State.FAILED, State.UPSTREAM_FAILED})


def trigger_rule_outcome(rule: str, upstream_states: Iterable[str | None]) -> str:
    """``"run"``, ``"wait"``, or the state to give without running (upstream_failed/skipped)."""
    states = list(upstream_states)
    if not states or rule == TriggerRule.ALWAYS:
        return RUN
    total = len(states)
    success = sum(1 for s in states if s == State.SUCCESS)
    skipped = sum(1 for s in states if s == State.SKIPPED)
    failed = sum(1 for s in states if s in _FAILED)
    done = success + skipped + failed
    if rule == TriggerRule.ALL_SUCCESS:
        if failed:
            return State.UPSTREAM_FAILED
        if skipped:
            return State.SKIPPED
        return RUN if success == total else WAIT
    if rule == TriggerRule.ALL_FAILED:
        if success or skipped:
            return State.SKIPPED
        return RUN if failed == total else WAIT
    if rule == TriggerRule.ALL_DONE:
        return RUN if done == total else WAIT
    if rule == TriggerRule.ONE_SUCCESS:
        if success:
            return RUN
        if done == total:
            return State.UPSTREAM_FAILED if failed else State.SKIPPED
        return WAIT
    if rule == TriggerRule.ONE_FAILED:
        if failed:
            return RUN
        return State.SKIPPED if done == total else WAIT
    if rule == TriggerRule.NONE_FAILED:
        if failed:
            return State.UPSTREAM_FAILED
        return RUN if done == total else WAIT
    raise ValueError(f"unknown trigger rule {rule!r}")


@dataclass
class Readiness:
    """The answer of :func:`evaluate`: run, wait (with why), or a state to set without running."""

    outcome: str
    reason: str = ""

    @property
    def runnable(self) -> bool:
        return self.outcome == RUN


def evaluate(ti: TaskInstance, task: BaseOperator, session: Any, now: datetime) -> Readiness:
    """Check every dependency of one task instance against the database."""
    from sqlalchemy import select

    from flux.models import TaskInstance as TI  # noqa: N817 - reads better in queries

    if task.start_date is not None and ti.execution_date < task.start_date:
        return Readiness(WAIT, f"execution date is before the task's start_date {task.start_date}")
    if task.end_date is not None and ti.execution_date > task.end_date:
        return Readiness(WAIT, f"execution date is after the task's end_date {task.end_date}")
    if ti.state in (State.UP_FOR_RETRY, State.UP_FOR_RESCHEDULE) and ti.next_try_at and ti.next_try_at > now:
        return Readiness(WAIT, f"waiting until {ti.next_try_at.isoformat()} before the next try")
    if task.depends_on_past and task.dag is not None:
        previous = task.dag.previous_date(ti.execution_date)
        if previous is not None and (task.start_date is None or previous >= task.start_date):
            state = session.execute(select(TI.state).where(
                TI.dag_id == ti.dag_id, TI.task_id == ti.task_id, TI.execution_date == previous)
            ).scalar()
            if state not in (State.SUCCESS, State.SKIPPED):
                return Readiness(WAIT, f"depends_on_past: the run of {previous:%Y-%m-%d %H:%M:%S} "
                                       f"is {state or 'not run'}")
    if task.upstream_task_ids:
        rows = dict(session.execute(select(TI.task_id, TI.state).where(
            TI.dag_id == ti.dag_id, TI.execution_date == ti.execution_date,
            TI.task_id.in_(sorted(task.upstream_task_ids)))).all())
        states = [rows.get(t) for t in task.upstream_task_ids]
        outcome = trigger_rule_outcome(task.trigger_rule, states)
        if outcome == WAIT:
            pending = sorted(t for t in task.upstream_task_ids if rows.get(t) not in State.FINISHED)
            return Readiness(WAIT, f"trigger rule {task.trigger_rule}: waiting for "
                                   f"{', '.join(pending)}")
        if outcome != RUN:
            return Readiness(outcome, f"trigger rule {task.trigger_rule} with upstream states "
                                      f"{', '.join(f'{t}={rows.get(t)}' for t in sorted(rows))}")
    return Readiness(RUN)
