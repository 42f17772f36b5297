"""The ``task_instance`` table: one task of one DAG for one execution date, with its tries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flux.models.base import Base, IdString, UtcDateTime

if TYPE_CHECKING:
    from flux.baseoperator import BaseOperator


class TaskInstance(Base):
    """A task instance, identified by ``(dag_id, task_id, execution_date)``.

    ``try_number`` counts the tries started so far (0 before the first). ``next_try_at`` is when an
    ``up_for_retry`` or ``up_for_reschedule`` instance may run again. ``heartbeat`` is refreshed by
    the process running it, so that a dead one is found (zombie detection).
    """

    __tablename__ = "task_instance"
    __table_args__ = (
        Index("ix_task_instance_state", "state"),
        Index("ix_task_instance_dag_id_state", "dag_id", "state"),
        Index("ix_task_instance_dag_id_execution_date", "dag_id", "execution_date"),
    )

    dag_id: Mapped[str] = mapped_column(IdString(), primary_key=True)
    task_id: Mapped[str] = mapped_column(IdString(), primary_key=True)
    execution_date: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(20))
    try_number: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    max_tries: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    start_date: Mapped[datetime | None] = mapped_column(UtcDateTime())
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime())
    duration: Mapped[float | None] = mapped_column(Float)
    hostname: Mapped[str | None] = mapped_column(String(1000))
    pid: Mapped[int | None] = mapped_column(Integer)
    operator: Mapped[str | None] = mapped_column(String(1000))
    pool: Mapped[str | None] = mapped_column(String(256))
    pool_slots: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    queue: Mapped[str | None] = mapped_column(String(256))
    priority_weight: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    heartbeat: Mapped[datetime | None] = mapped_column(UtcDateTime())
    next_try_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    job_id: Mapped[int | None] = mapped_column(Integer)
    external_executor_id: Mapped[str | None] = mapped_column(String(250))
    rendered_fields: Mapped[str | None] = mapped_column(Text)  # JSON object, secrets masked
    note: Mapped[str | None] = mapped_column(Text)  # why it ended as it did, one line

    # Not stored: the operator object, attached by whoever runs or renders the instance.
    __allow_unmapped__ = True
    task: BaseOperator | None = None

    def __repr__(self) -> str:
        return (f"<TaskInstance {self.dag_id}.{self.task_id} {self.execution_date:%Y-%m-%dT%H:%M:%S}"
                f" [{self.state}]>")

    @property
    def key(self) -> tuple[str, str, datetime]:
        return (self.dag_id, self.task_id, self.execution_date)

    def xcom_push(self, key: str, value: Any) -> None:
        """Store a small JSON-serializable value for downstream tasks to pull."""
        from flux import xcom

        xcom.push(self.dag_id, self.task_id, self.execution_date, key, value)

    def xcom_pull(self, task_ids: str | list[str] | None = None, key: str = "return_value",
                  dag_id: str | None = None) -> Any:
        """The value pushed under ``key`` by ``task_ids`` (a list gives a list) for this date."""
        from flux import xcom

        return xcom.pull(dag_id or self.dag_id, task_ids if task_ids is not None else self.task_id,
                         self.execution_date, key)
