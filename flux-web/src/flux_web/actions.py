"""What an admin can do from the web (pages and API alike), each recorded in the audit log."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flux.dates import as_utc, utcnow
from flux.db import session_scope
from flux.exceptions import DagNotFound, InvalidDagRunConf
from flux.models import AuditLog, DagModel, TaskInstance
from flux.state import State
from flux_web.errors import ActionConflict

if TYPE_CHECKING:
    from flux.dag import DAG
    from flux.dagbag import DagBag
    from flux.models import DagRun

#: the states a task instance can be marked with from the web
MARKABLE = (State.SUCCESS, State.FAILED)


def audit(session: Any, event: str, owner: str, dag_id: str | None = None, task_id: str | None = None,
          execution_date: datetime | None = None, **extra: Any) -> None:
    """Add one audit log entry (committed with the caller's session)."""
    extra["source"] = "web"
    session.add(AuditLog(dttm=utcnow(), event=event, owner=owner, dag_id=dag_id, task_id=task_id,
                         execution_date=execution_date, extra=json.dumps(extra, default=str)))


def set_paused(dag_id: str, paused: bool, owner: str) -> bool:
    """Pause or unpause a DAG; returns whether the flag changed."""
    with session_scope() as session:
        row = session.get(DagModel, dag_id)
        if row is None:
            raise DagNotFound(f"DAG {dag_id!r} not found")
        changed = bool(row.is_paused) != paused
        row.is_paused = paused
        audit(session, "pause" if paused else "unpause", owner, dag_id)
    return changed


def parse_conf(text: str | None) -> dict[str, Any]:
    """A run's ``conf`` from the trigger form: a JSON object (``{}`` when empty)."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidDagRunConf(f"conf is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidDagRunConf(
            f"conf must be a JSON object like {{\"key\": \"value\"}}, got {type(value).__name__}")
    return value


def trigger(bag: DagBag, dag_id: str, conf: dict[str, Any], execution_date: datetime | None,
            owner: str) -> DagRun:
    """Create a manual run (the same code as ``flux dags trigger``; it writes the audit entry)."""
    from flux.trigger import trigger_dag

    return trigger_dag(bag, dag_id, conf, execution_date, owner=owner)


def clear_range(execution_date: datetime, past: bool,
                future: bool) -> tuple[datetime | None, datetime | None]:
    """The dates a clear covers: the one date, plus everything before and/or after it."""
    return (None if past else execution_date, None if future else execution_date)


def _task_regex(task_ids: list[str]) -> str:
    return "^(" + "|".join(re.escape(t) for t in task_ids) + ")$"


def clear(dag: DAG, task_ids: list[str], start: datetime | None, end: datetime | None, *,
          upstream: bool = False, downstream: bool = False, only_failed: bool = False,
          dry_run: bool = False, owner: str | None = None) -> list[TaskInstance]:
    """Clear (or with ``dry_run`` only list) the instances of ``task_ids`` and their relatives.

    Exactly what a dry run lists is what the same call without ``dry_run`` clears.
    """
    for task_id in task_ids:
        dag.get_task(task_id)  # TaskNotFound for an unknown one
    if not task_ids:
        return []
    found = dag.clear(start_date=start, end_date=end, task_regex=_task_regex(task_ids),
                      only_failed=only_failed, include_upstream=upstream,
                      include_downstream=downstream, dry_run=dry_run)
    if not dry_run:
        with session_scope() as session:
            audit(session, "clear", owner or "?", dag.dag_id,
                  task_ids[0] if len(task_ids) == 1 else None,
                  start if start is not None and start == end else None,
                  task_ids=task_ids, start_date=start, end_date=end, upstream=upstream,
                  downstream=downstream, only_failed=only_failed, count=len(found),
                  cleared=[[ti.task_id, ti.execution_date.isoformat()] for ti in found[:100]])
    return found


def mark(dag: DAG, task_id: str, execution_date: datetime, state: str, owner: str) -> TaskInstance:
    """Set one task instance's state to success or failed (created if it has none yet)."""
    from flux.transitions import transition

    if state not in MARKABLE:
        raise InvalidDagRunConf(f"a task instance can be marked {' or '.join(MARKABLE)}, not {state!r}")
    task = dag.get_task(task_id)
    execution_date = as_utc(execution_date)  # type: ignore[assignment]
    now = utcnow()
    note = f"marked {state} by {owner} in the web UI"
    with session_scope() as session:
        ti = session.get(TaskInstance, (dag.dag_id, task_id, execution_date))
        if ti is None:
            ti = TaskInstance(dag_id=dag.dag_id, task_id=task_id, execution_date=execution_date,
                              state=None, try_number=0, max_tries=task.retries,
                              operator=task.operator_name, pool=task.pool, queue=task.queue,
                              priority_weight=task.priority_weight)
            session.add(ti)
            session.flush()
        previous = ti.state
        # Guarded by the state seen: a running task's heartbeat sees the change and stops it.
        if not transition(session, ti, state, expect_state=previous, end_date=now,
                          start_date=ti.start_date or now, next_try_at=None, note=note):
            raise ActionConflict(f"{task_id} on {execution_date.isoformat()} changed while being "
                               "marked; reload and try again")
        audit(session, f"mark_{state}", owner, dag.dag_id, task_id, execution_date,
              previous_state=previous)
    return ti
