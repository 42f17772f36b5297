"""What the pages and the API read from the metadata database: few queries, each by index.

Every function takes an open session and returns plain data; none issues one query per row
(the DAG list and the tree view stay fast with thousands of DAGs, runs and task instances).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select, type_coerce, union
from sqlalchemy.orm import Session

from flux.exceptions import DagNotFound
from flux.models import AuditLog, DagModel, DagRun, ImportErrorRecord, TaskInstance
from flux.models.base import UtcDateTime

if TYPE_CHECKING:
    from flux.baseoperator import BaseOperator
    from flux.dag import DAG

#: how many of a DAG's latest runs the DAG list counts by state
RECENT_RUNS = 25
#: a tree view never shows more rows than this (a dense DAG's tree repeats its subtrees)
MAX_TREE_ROWS = 2000


# --- the DAG list --------------------------------------------------------------------------------


@dataclass
class DagSummary:
    """One row of the DAG list."""

    dag_id: str
    owners: str | None
    description: str | None
    schedule: str | None
    tags: list[str]
    is_paused: bool
    is_active: bool
    next_dagrun: datetime | None
    fileloc: str | None
    recent_runs: dict[str, int] = field(default_factory=dict)
    last_run: tuple[datetime, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id, "owners": self.owners, "description": self.description,
            "schedule": self.schedule, "tags": self.tags, "is_paused": self.is_paused,
            "is_active": self.is_active,
            "next_dagrun": self.next_dagrun.isoformat() if self.next_dagrun else None,
            "fileloc": self.fileloc, "recent_runs": self.recent_runs,
            "last_run": ({"execution_date": self.last_run[0].isoformat(), "state": self.last_run[1]}
                         if self.last_run else None),
        }


@dataclass
class DagPage:
    """A page of the DAG list and how many DAGs match in all."""

    dags: list[DagSummary]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _tags(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    return [str(tag) for tag in value] if isinstance(value, list) else []


def dag_page(session: Session, page: int = 1, page_size: int = 100, search: str | None = None,
             include_inactive: bool = False) -> DagPage:
    """The DAGs of one page (by dag_id), with the state counts of their latest runs."""
    query = select(DagModel)
    count = select(func.count()).select_from(DagModel)
    if not include_inactive:
        query = query.where(DagModel.is_active.is_(True))
        count = count.where(DagModel.is_active.is_(True))
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(DagModel.dag_id.like(pattern, escape="\\"))
        count = count.where(DagModel.dag_id.like(pattern, escape="\\"))
    total = session.execute(count).scalar_one()
    rows = session.execute(
        query.order_by(DagModel.dag_id).limit(page_size).offset((page - 1) * page_size)
    ).scalars().all()
    dags = [DagSummary(dag_id=r.dag_id, owners=r.owners, description=r.description,
                       schedule=r.schedule, tags=_tags(r.tags), is_paused=bool(r.is_paused),
                       is_active=bool(r.is_active), next_dagrun=r.next_dagrun, fileloc=r.fileloc)
            for r in rows]
    _add_recent_runs(session, dags)
    return DagPage(dags=dags, total=total, page=page, page_size=page_size)


def _add_recent_runs(session: Session, dags: list[DagSummary]) -> None:
    if not dags:
        return
    by_id = {d.dag_id: d for d in dags}
    # One query for the whole page: number each DAG's runs newest first (a window function, by
    # the (dag_id, execution_date) index) and keep the latest RECENT_RUNS of each.
    number = func.row_number().over(partition_by=DagRun.dag_id,
                                    order_by=DagRun.execution_date.desc()).label("n")
    ranked = (select(DagRun.dag_id, DagRun.execution_date, DagRun.state, number)
              .where(DagRun.dag_id.in_(list(by_id))).subquery())
    # Counted in the database: a few rows per DAG come back, not RECENT_RUNS of them.
    latest = type_coerce(func.max(case((ranked.c.n == 1, ranked.c.execution_date))), UtcDateTime())
    rows = session.execute(
        select(ranked.c.dag_id, ranked.c.state, func.count(), latest)
        .where(ranked.c.n <= RECENT_RUNS).group_by(ranked.c.dag_id, ranked.c.state)
    ).all()
    for dag_id, state, count, latest_date in rows:
        summary = by_id[dag_id]
        summary.recent_runs[state] = count
        if latest_date is not None:
            summary.last_run = (latest_date, state)


def dag_summary(session: Session, dag_id: str) -> DagSummary:
    """One DAG's row of the list; :class:`DagNotFound` if the ``dag`` table has no such DAG."""
    row = session.get(DagModel, dag_id)
    if row is None:
        raise DagNotFound(f"DAG {dag_id!r} not found")
    summary = DagSummary(dag_id=row.dag_id, owners=row.owners, description=row.description,
                         schedule=row.schedule, tags=_tags(row.tags), is_paused=bool(row.is_paused),
                         is_active=bool(row.is_active), next_dagrun=row.next_dagrun,
                         fileloc=row.fileloc)
    _add_recent_runs(session, [summary])
    return summary


def import_errors(session: Session) -> list[ImportErrorRecord]:
    """The DAG files that failed to import, by file name."""
    return list(session.execute(select(ImportErrorRecord).order_by(ImportErrorRecord.filename))
                .scalars())


# --- one DAG -------------------------------------------------------------------------------------


def tree_rows(dag: DAG, limit: int = MAX_TREE_ROWS) -> tuple[list[tuple[int, BaseOperator]], bool]:
    """``(depth, task)`` in the order of ``dag.tree_lines()``; True if cut at ``limit`` rows."""
    rows: list[tuple[int, BaseOperator]] = []
    # The same walk as DAG.tree_lines (each last task, then its upstream tasks below it), kept
    # iterative so a deep DAG cannot exhaust the recursion limit.
    stack: list[tuple[int, BaseOperator]] = [(0, leaf) for leaf in reversed(dag.leaves)]
    while stack:
        if len(rows) >= limit:
            return rows, True
        depth, task = stack.pop()
        rows.append((depth, task))
        stack.extend((depth + 1, up) for up in reversed(task.upstream_list))
    return rows, False


def recent_dates(session: Session, dag_id: str, base_date: datetime | None, num: int) -> list[datetime]:
    """The latest ``num`` execution dates (runs, or task instances without a run), oldest first."""
    runs = select(DagRun.execution_date.label("d")).where(DagRun.dag_id == dag_id)
    tis = select(TaskInstance.execution_date.label("d")).where(TaskInstance.dag_id == dag_id)
    if base_date is not None:
        runs = runs.where(DagRun.execution_date <= base_date)
        tis = tis.where(TaskInstance.execution_date <= base_date)
    # Each side is limited first, so both read only the newest index entries.
    runs = runs.order_by(DagRun.execution_date.desc()).limit(num).subquery()
    tis = tis.distinct().order_by(TaskInstance.execution_date.desc()).limit(num).subquery()
    both = union(select(runs.c.d), select(tis.c.d)).subquery()
    dates = session.execute(select(both.c.d).order_by(both.c.d.desc()).limit(num)).scalars().all()
    return sorted(dates)


@dataclass
class TreeGrid:
    """The tree view's data: dates (columns), their runs, and each task instance's state."""

    dates: list[datetime]
    runs: dict[datetime, tuple[str, str]]  # date -> (run_id, state)
    cells: dict[tuple[str, datetime], tuple[str | None, int]]  # (task_id, date) -> (state, try)


def tree_grid(session: Session, dag_id: str, base_date: datetime | None, num: int) -> TreeGrid:
    """Runs and task instance states of a DAG's latest ``num`` dates (three indexed queries)."""
    dates = recent_dates(session, dag_id, base_date, num)
    if not dates:
        return TreeGrid([], {}, {})
    first, last = dates[0], dates[-1]
    runs = {d: (run_id, state) for d, run_id, state in session.execute(
        select(DagRun.execution_date, DagRun.run_id, DagRun.state).where(
            DagRun.dag_id == dag_id, DagRun.execution_date >= first, DagRun.execution_date <= last))}
    wanted = set(dates)
    cells = {}
    for task_id, d, state, try_number in session.execute(
            select(TaskInstance.task_id, TaskInstance.execution_date, TaskInstance.state,
                   TaskInstance.try_number).where(
                TaskInstance.dag_id == dag_id, TaskInstance.execution_date >= first,
                TaskInstance.execution_date <= last)):
        if d in wanted:
            cells[(task_id, d)] = (state, try_number)
    return TreeGrid(dates, runs, cells)


def dag_runs(session: Session, dag_id: str, limit: int = 50, offset: int = 0) -> list[DagRun]:
    """A DAG's runs, newest first."""
    return list(session.execute(
        select(DagRun).where(DagRun.dag_id == dag_id)
        .order_by(DagRun.execution_date.desc()).limit(limit).offset(offset)).scalars())


def task_instances_of_date(session: Session, dag_id: str, execution_date: datetime) -> list[TaskInstance]:
    """Every task instance of one DAG and date."""
    return list(session.execute(
        select(TaskInstance).where(TaskInstance.dag_id == dag_id,
                                   TaskInstance.execution_date == execution_date)
        .order_by(TaskInstance.start_date, TaskInstance.task_id)).scalars())


def durations(session: Session, dag_id: str,
              num: int) -> tuple[list[datetime], dict[str, list[float | None]]]:
    """Each task's duration (seconds) over the DAG's latest ``num`` dates."""
    dates = recent_dates(session, dag_id, None, num)
    series: dict[str, list[float | None]] = defaultdict(lambda: [None] * len(dates))
    if dates:
        position = {d: i for i, d in enumerate(dates)}
        for task_id, d, seconds in session.execute(
                select(TaskInstance.task_id, TaskInstance.execution_date, TaskInstance.duration).where(
                    TaskInstance.dag_id == dag_id, TaskInstance.execution_date >= dates[0],
                    TaskInstance.execution_date <= dates[-1])):
            if d in position:
                series[task_id][position[d]] = seconds
    return dates, dict(series)


def get_task_instance(session: Session, dag_id: str, task_id: str,
                      execution_date: datetime) -> TaskInstance | None:
    return session.get(TaskInstance, (dag_id, task_id, execution_date))


def get_dag_run(session: Session, dag_id: str, execution_date: datetime) -> DagRun | None:
    return session.execute(select(DagRun).where(
        DagRun.dag_id == dag_id, DagRun.execution_date == execution_date)).scalars().first()


# --- the audit log -------------------------------------------------------------------------------


def audit_entries(session: Session, limit: int = 100, offset: int = 0, dag_id: str | None = None,
                  event: str | None = None, owner: str | None = None) -> tuple[list[AuditLog], int]:
    """Audit log entries, newest first, optionally filtered; and how many match in all."""
    query = select(AuditLog)
    count = select(func.count()).select_from(AuditLog)
    for column, value in ((AuditLog.dag_id, dag_id), (AuditLog.event, event), (AuditLog.owner, owner)):
        if value:
            query = query.where(column == value)
            count = count.where(column == value)
    total = session.execute(count).scalar_one()
    rows = session.execute(query.order_by(AuditLog.dttm.desc(), AuditLog.id.desc())
                           .limit(limit).offset(offset)).scalars().all()
    return list(rows), total
