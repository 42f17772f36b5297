"""The ``dag_run`` table: one run of a DAG for one execution date."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flux.models.base import Base, IdString, UtcDateTime


class DagRun(Base):
    """A run of a DAG: ``run_type`` is ``scheduled``, ``backfill`` or ``manual``."""

    __tablename__ = "dag_run"
    __table_args__ = (
        UniqueConstraint("dag_id", "execution_date"),
        UniqueConstraint("dag_id", "run_id"),
        Index("ix_dag_run_state_dag_id", "state", "dag_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(IdString(), nullable=False)
    run_id: Mapped[str] = mapped_column(IdString(), nullable=False)
    execution_date: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    run_type: Mapped[str] = mapped_column(String(20), nullable=False, default="scheduled")
    external_trigger: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    conf: Mapped[str | None] = mapped_column(Text)  # JSON object
    start_date: Mapped[datetime | None] = mapped_column(UtcDateTime())
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return f"<DagRun {self.dag_id} @ {self.execution_date}: {self.run_id}, {self.state}>"
