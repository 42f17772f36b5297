"""Triggering a DAG: create a manual run for the scheduler to start (``flux dags trigger``, the web UI)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flux.dagbag import DagBag
    from flux.models import DagRun


def trigger_dag(bag: DagBag, dag_id: str, conf: dict[str, Any] | None = None,
                execution_date: datetime | None = None, *, owner: str) -> DagRun:
    """Create a queued manual run of ``dag_id`` (from ``bag``) and record it in the audit log.

    Raises :class:`DagNotFound` when the bag has no such DAG and :class:`DagRunExists` when the DAG
    already has a run for that date (default: now).
    """
    from sqlalchemy import or_, select
    from sqlalchemy.exc import IntegrityError

    from flux.dates import as_utc, display, utcnow
    from flux.db import session_scope
    from flux.exceptions import DagRunExists
    from flux.models import AuditLog, DagRun
    from flux.state import DagRunState

    bag.get_dag(dag_id)
    values = dict(conf or {})
    when = as_utc(execution_date) or utcnow()
    run_id = f"manual__{when.isoformat()}"
    with session_scope() as session:
        existing = session.execute(select(DagRun).where(
            DagRun.dag_id == dag_id,
            or_(DagRun.execution_date == when, DagRun.run_id == run_id),
        )).scalars().first()
        if existing is not None:
            raise DagRunExists(
                f"DAG {dag_id!r} already has a run for {display(when)} "
                f"(run_id {existing.run_id}, state {existing.state})"
            )
        bag.sync_to_db(session)
        run = DagRun(dag_id=dag_id, run_id=run_id, execution_date=when, state=DagRunState.QUEUED,
                     run_type="manual", external_trigger=True, conf=json.dumps(values))
        session.add(run)
        try:
            session.flush()
        except IntegrityError:  # created by someone else since the check above
            raise DagRunExists(f"DAG {dag_id!r} already has a run for {display(when)}") from None
        session.add(AuditLog(dttm=utcnow(), event="trigger", owner=owner, dag_id=dag_id,
                             execution_date=when,
                             extra=json.dumps({"run_id": run_id, "conf": values})))
    return run
