"""Clearing task instances: reset them so that they run again (``flux clear``, the web UI)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from flux.dates import as_utc
from flux.state import DagRunState, State

if TYPE_CHECKING:
    from flux.dag import DAG
    from flux.models import TaskInstance


def find_task_instances(session: Any, dag_id: str, task_ids: list[str], start: datetime | None,
                        end: datetime | None, only_failed: bool = False) -> list[TaskInstance]:
    """The stored task instances of ``task_ids`` between ``start`` and ``end`` (both included)."""
    from flux.models import TaskInstance

    query = select(TaskInstance).where(TaskInstance.dag_id == dag_id,
                                       TaskInstance.task_id.in_(task_ids))
    if start is not None:
        query = query.where(TaskInstance.execution_date >= as_utc(start))
    if end is not None:
        query = query.where(TaskInstance.execution_date <= as_utc(end))
    if only_failed:
        query = query.where(TaskInstance.state.in_([State.FAILED, State.UPSTREAM_FAILED]))
    query = query.order_by(TaskInstance.execution_date, TaskInstance.task_id)
    return list(session.execute(query).scalars())


def clear_task_instances(dag: DAG, task_ids: list[str], start: datetime | None, end: datetime | None,
                         only_failed: bool = False, dry_run: bool = False) -> list[TaskInstance]:
    """Reset the matching instances to no state (their retries counted anew) and reopen their runs.

    A running instance is reset too: its heartbeat notices and stops the task.
    """
    from flux.db import session_scope
    from flux.models import DagRun
    from flux.transitions import transition

    with session_scope() as session:
        instances = find_task_instances(session, dag.dag_id, task_ids, start, end, only_failed)
        if dry_run:
            return instances
        dates = set()
        for ti in instances:
            retries = dag.get_task(ti.task_id).retries if dag.has_task(ti.task_id) else 0
            transition(session, ti, None, expect_state=ti.state, expect_try=ti.try_number,
                       max_tries=ti.try_number + retries, next_try_at=None, end_date=None,
                       note="cleared")
            dates.add(ti.execution_date)
        if dates:
            for run in session.execute(select(DagRun).where(
                    DagRun.dag_id == dag.dag_id, DagRun.execution_date.in_(sorted(dates)))).scalars():
                run.state, run.end_date = DagRunState.QUEUED if run.run_type != "backfill" \
                    else DagRunState.RUNNING, None
        return instances
