"""Changing a task instance's state: guarded updates, and listeners told after the commit.

Every state change goes through :func:`transition`. Its UPDATE names the state (and try number)
the caller saw, so two processes can never both move one task instance forward: the second one
updates no row and learns it lost. Plugins' ``flux_task_instance_state_changed`` listeners run once
the change is committed, never for a rolled-back one. Either an ORM session
(:func:`flux.db.session_scope`) or a Core connection (:func:`flux.db.transaction`) carries it.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import bindparam, event, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from flux.models import TaskInstance

ANY = object()
#: where a session or a connection keeps its changes until they are committed (``.info``)
PENDING_KEY = "flux_state_changes"


def transition(session: Session | Connection, ti: TaskInstance, state: str | None, *, expect_state: Any = ANY,
               expect_try: Any = ANY, **values: Any) -> bool:
    """Set ``ti``'s state (and other columns) if it still is as the caller expects.

    Returns False, changing nothing, when another process changed the row first.
    """
    values["state"] = state
    state_check = "any" if expect_state is ANY else "null" if expect_state is None else "value"
    stmt = _statement(tuple(sorted(values)), state_check, expect_try is not ANY)
    params = {f"v_{name}": value for name, value in values.items()}
    params.update(k_dag_id=ti.dag_id, k_task_id=ti.task_id, k_execution_date=ti.execution_date)
    if state_check == "value":
        params["e_state"] = expect_state
    if expect_try is not ANY:
        params["e_try"] = expect_try
    result = session.execute(stmt, params)
    if result.rowcount == 0:
        return False
    previous = ti.state
    for name, value in values.items():
        set_committed_value(ti, name, value)
    if previous != state:
        session.info.setdefault(PENDING_KEY, []).append((ti, previous, state))
    return True


@functools.lru_cache(maxsize=256)
def _statement(names: tuple[str, ...], state_check: str, check_try: bool) -> Any:
    """A guarded UPDATE, built once per shape: the hot path only binds values."""
    table = TaskInstance.__table__
    columns = table.c
    stmt = update(table).where(
        columns.dag_id == bindparam("k_dag_id"),
        columns.task_id == bindparam("k_task_id"),
        columns.execution_date == bindparam("k_execution_date"),
    )
    if state_check == "null":
        stmt = stmt.where(columns.state.is_(None))
    elif state_check == "value":
        stmt = stmt.where(columns.state == bindparam("e_state"))
    if check_try:
        stmt = stmt.where(columns.try_number == bindparam("e_try"))
    return stmt.values({name: bindparam(f"v_{name}", type_=columns[name].type) for name in names})


def record_new(session: Session | Connection, ti: TaskInstance) -> None:
    """Announce a task instance inserted with a state (listeners run after the commit)."""
    if ti.state is not None:
        session.info.setdefault(PENDING_KEY, []).append((ti, None, ti.state))


@event.listens_for(Session, "after_commit")
def _notify_listeners(session: Session) -> None:
    changes = session.info.pop(PENDING_KEY, None)
    if changes:
        announce(changes)


def announce(changes: list[tuple[TaskInstance, str | None, str | None]]) -> None:
    """Tell the listeners about committed changes: ``(ti, previous, state)`` each."""
    from flux.plugins import get_plugin_manager

    manager = get_plugin_manager()
    for ti, previous, state in changes:
        manager.call_listeners("flux_task_instance_state_changed", ti=ti, previous=previous,
                               state=state)


@event.listens_for(Session, "after_rollback")
def _forget_changes(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)
