"""Changing a task instance's state: guarded updates, and listeners told after the commit.

Every state change goes through :func:`transition`. Its UPDATE names the state (and try number)
the caller saw, so two processes can never both move one task instance forward: the second one
updates no row and learns it lost. Plugins' ``flux_task_instance_state_changed`` listeners run once
the change is committed, never for a rolled-back one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from flux.models import TaskInstance

ANY = object()
_PENDING_KEY = "flux_state_changes"


def transition(session: Session, ti: TaskInstance, state: str | None, *, expect_state: Any = ANY,
               expect_try: Any = ANY, **values: Any) -> bool:
    """Set ``ti``'s state (and other columns) if it still is as the caller expects.

    Returns False, changing nothing, when another process changed the row first.
    """
    stmt = update(TaskInstance).where(
        TaskInstance.dag_id == ti.dag_id,
        TaskInstance.task_id == ti.task_id,
        TaskInstance.execution_date == ti.execution_date,
    )
    if expect_state is not ANY:
        column = TaskInstance.state
        stmt = stmt.where(column.is_(None) if expect_state is None else column == expect_state)
    if expect_try is not ANY:
        stmt = stmt.where(TaskInstance.try_number == expect_try)
    values["state"] = state
    result = session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    if result.rowcount == 0:
        return False
    previous = ti.state
    for name, value in values.items():
        set_committed_value(ti, name, value)
    if previous != state:
        session.info.setdefault(_PENDING_KEY, []).append((ti, previous, state))
    return True


def record_new(session: Session, ti: TaskInstance) -> None:
    """Announce a task instance inserted with a state (listeners run after the commit)."""
    if ti.state is not None:
        session.info.setdefault(_PENDING_KEY, []).append((ti, None, ti.state))


@event.listens_for(Session, "after_commit")
def _notify_listeners(session: Session) -> None:
    changes = session.info.pop(_PENDING_KEY, None)
    if not changes:
        return
    from flux.plugins import get_plugin_manager

    manager = get_plugin_manager()
    for ti, previous, state in changes:
        manager.call_listeners("flux_task_instance_state_changed", ti=ti, previous=previous,
                               state=state)


@event.listens_for(Session, "after_rollback")
def _forget_changes(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
