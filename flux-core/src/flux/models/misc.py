"""The smaller tables: jobs, import errors, the audit log, XComs, pools and variables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flux.models.base import Base, IdString, UtcDateTime


class Job(Base):
    """A long-running process (scheduler, backfill, worker) and its heartbeat."""

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_type_state", "job_type", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_type: Mapped[str] = mapped_column(String(30), nullable=False)
    dag_id: Mapped[str | None] = mapped_column(IdString())
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    hostname: Mapped[str | None] = mapped_column(String(1000))
    pid: Mapped[int | None] = mapped_column(Integer)
    start_date: Mapped[datetime | None] = mapped_column(UtcDateTime())
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime())
    latest_heartbeat: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ImportErrorRecord(Base):
    """A DAG file that failed to import, with its traceback (one row per file)."""

    __tablename__ = "import_error"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    filename: Mapped[str] = mapped_column(String(1000), nullable=False)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    stacktrace: Mapped[str | None] = mapped_column(Text)


class AuditLog(Base):
    """An action taken from the CLI or the web UI, and who took it (table ``log``)."""

    __tablename__ = "log"
    __table_args__ = (Index("ix_log_dttm", "dttm"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dttm: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    event: Mapped[str] = mapped_column(String(60), nullable=False)
    owner: Mapped[str | None] = mapped_column(String(500))
    dag_id: Mapped[str | None] = mapped_column(IdString())
    task_id: Mapped[str | None] = mapped_column(IdString())
    execution_date: Mapped[datetime | None] = mapped_column(UtcDateTime())
    extra: Mapped[str | None] = mapped_column(Text)


class XCom(Base):
    """A small JSON value passed from one task instance to others."""

    __tablename__ = "xcom"

    dag_id: Mapped[str] = mapped_column(IdString(), primary_key=True)
    task_id: Mapped[str] = mapped_column(IdString(), primary_key=True)
    execution_date: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    key: Mapped[str] = mapped_column(IdString(), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class Pool(Base):
    """A named number of slots shared by the task instances assigned to it."""

    __tablename__ = "slot_pool"

    pool: Mapped[str] = mapped_column(String(256), primary_key=True)
    slots: Mapped[int] = mapped_column(Integer, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)


class Variable(Base):
    """A key/value setting DAGs can read at run time (values encrypted like passwords)."""

    __tablename__ = "variable"

    key: Mapped[str] = mapped_column(IdString(), primary_key=True)
    val: Mapped[str | None] = mapped_column(Text)
    is_encrypted: Mapped[bool] = mapped_column(default=False, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
