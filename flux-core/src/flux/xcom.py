"""XCom: small JSON values passed between task instances, stored in the ``xcom`` table."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from flux.config import get_config
from flux.dates import as_utc, utcnow
from flux.db import session_scope
from flux.exceptions import XComError
from flux.models import XCom

RETURN_VALUE = "return_value"


def serialize(value: Any, where: str) -> str:
    """``value`` as JSON text, or :class:`XComError` if it is not JSON or too large."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise XComError(f"{where}: XCom values must be JSON-serializable ({exc})") from None
    limit = int(get_config().get("core", "max_xcom_size", 49344))
    if len(text.encode()) > limit:
        raise XComError(
            f"{where}: XCom value is {len(text.encode())} bytes, more than the limit of {limit} "
            "([core] max_xcom_size); store large data elsewhere and pass its location"
        )
    return text


def push(dag_id: str, task_id: str, execution_date: datetime, key: str, value: Any,
         session: Any = None) -> None:
    """Store ``value`` under ``key`` for one task instance (replacing an earlier value)."""
    text = serialize(value, f"{dag_id}.{task_id} key {key!r}")
    when = as_utc(execution_date)

    def write(s: Any) -> None:
        # Update in place or insert; never DELETE a missing row first: on MySQL/MariaDB that takes
        # a gap lock, and two workers pushing for one DAG run then deadlock on their INSERTs.
        row = s.get(XCom, (dag_id, task_id, when, key))
        if row is None:
            s.add(XCom(dag_id=dag_id, task_id=task_id, execution_date=when, key=key, value=text,
                       timestamp=utcnow()))
        else:
            row.value, row.timestamp = text, utcnow()

    if session is not None:
        write(session)
    else:
        with session_scope() as s:
            write(s)


def pull(dag_id: str, task_ids: str | list[str], execution_date: datetime,
         key: str = RETURN_VALUE) -> Any:
    """The value for one task id, or a list of values (None where missing) for a list of ids."""
    ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
    with session_scope() as s:
        rows = s.execute(
            select(XCom.task_id, XCom.value).where(
                XCom.dag_id == dag_id, XCom.task_id.in_(ids),
                XCom.execution_date == as_utc(execution_date), XCom.key == key)
        ).all()
    found = {task_id: json.loads(value) if value is not None else None for task_id, value in rows}
    if isinstance(task_ids, str):
        return found.get(task_ids)
    return [found.get(task_id) for task_id in ids]


def clear(session: Any, dag_id: str, task_id: str, execution_date: datetime) -> None:
    """Forget every value of one task instance (done when a new try starts)."""
    session.execute(delete(XCom).where(XCom.dag_id == dag_id, XCom.task_id == task_id,
                                       XCom.execution_date == as_utc(execution_date)))
