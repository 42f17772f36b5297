"""Rows of the ``job`` table: long-running processes (scheduler, backfill, worker) and heartbeats."""

from __future__ import annotations

import os
import socket

from sqlalchemy import update

from flux.dates import utcnow
from flux.db import session_scope, with_reconnect
from flux.models import Job


@with_reconnect("recording a starting job")
def start_job(job_type: str, dag_id: str | None = None) -> int:
    """Record a starting process; returns its job id."""
    now = utcnow()
    with session_scope() as session:
        job = Job(job_type=job_type, dag_id=dag_id, state="running", hostname=socket.gethostname(),
                  pid=os.getpid(), start_date=now, latest_heartbeat=now)
        session.add(job)
        session.flush()
        return job.id


@with_reconnect("recording a job's heartbeat")
def heartbeat(job_id: int) -> None:
    """Tell the world the process is alive."""
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(latest_heartbeat=utcnow()))


@with_reconnect("recording the end of a job")
def end_job(job_id: int, state: str) -> None:
    """Record that the process ended (``success``, ``failed`` or ``killed``)."""
    now = utcnow()
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(
            state=state, end_date=now, latest_heartbeat=now))
