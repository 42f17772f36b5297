"""The ``dag`` table: what the scheduler knows about each DAG found in the DAG folder."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flux.models.base import Base, IdString, UtcDateTime


class DagModel(Base):
    """One row per DAG id: its file, schedule, paused flag and when its next run is due."""

    __tablename__ = "dag"

    dag_id: Mapped[str] = mapped_column(IdString(), primary_key=True)
    fileloc: Mapped[str | None] = mapped_column(String(2000))
    owners: Mapped[str | None] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(Text)
    schedule: Mapped[str | None] = mapped_column(String(1000))
    tags: Mapped[str | None] = mapped_column(Text)  # JSON list
    is_paused: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False, index=True)
    max_active_runs: Mapped[int | None] = mapped_column(Integer)
    last_parsed_time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    next_dagrun: Mapped[datetime | None] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return f"<DagModel {self.dag_id}>"
