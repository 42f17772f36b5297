"""``DAG``: a set of tasks, their dependencies and the schedule they run on."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flux.dates import as_utc, display, utcnow
from flux.exceptions import DagDefinitionError, DuplicateTaskIdError, TaskNotFound
from flux.schedules import Schedule, make_schedule

if TYPE_CHECKING:
    from flux.baseoperator import BaseOperator

_DAG_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
_context_stack: list[DAG] = []


def current_dag() -> DAG | None:
    """The DAG of the innermost ``with DAG(...)`` block, if any."""
    return _context_stack[-1] if _context_stack else None


class DAG:
    """A directed acyclic graph of tasks, run once per schedule date.

    >>> from datetime import datetime
    >>> with DAG("example", start_date=datetime(2024, 1, 1), schedule_interval="@daily") as dag:
    ...     pass

    :param dag_id: unique name (letters, digits, ``_``, ``-``, ``.``).
    :param default_args: defaults for the arguments of every task of the DAG.
    :param start_date: first execution date; end_date: last one (None: open ended).
    :param schedule_interval: a ``timedelta``, cron string, preset (``@daily``...) or ``None``.
    :param max_active_runs: how many runs may be in progress at once.
    :param catchup: whether the scheduler creates the runs missed since ``start_date``.
    :param template_searchpath: more folders in which template files are looked up.
    """

    def __init__(
        self,
        dag_id: str,
        default_args: dict[str, Any] | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        schedule_interval: Any = timedelta(days=1),
        description: str | None = None,
        params: dict[str, Any] | None = None,
        max_active_runs: int | None = None,
        catchup: bool = True,
        tags: Iterable[str] | None = None,
        template_searchpath: str | Iterable[str] | None = None,
        user_defined_macros: dict[str, Any] | None = None,
        is_paused_upon_creation: bool | None = None,
        doc_md: str | None = None,
    ) -> None:
        if not isinstance(dag_id, str) or not dag_id or not set(dag_id) <= _DAG_ID_CHARS:
            raise DagDefinitionError(f"invalid dag_id {dag_id!r}: use letters, digits, '_', '-' and '.'")
        self.dag_id = dag_id
        self.default_args = dict(default_args or {})
        self.start_date = as_utc(start_date or self.default_args.get("start_date"))
        self.end_date = as_utc(end_date or self.default_args.get("end_date"))
        self.schedule_interval = schedule_interval
        self.schedule: Schedule = make_schedule(schedule_interval)
        self.description = description
        self.params = dict(params or {})
        if max_active_runs is None:
            from flux.config import get_config

            max_active_runs = int(get_config().get("core", "max_active_runs_per_dag", 16))
        if max_active_runs < 1:
            raise DagDefinitionError(f"DAG {dag_id!r}: max_active_runs must be at least 1")
        self.max_active_runs = max_active_runs
        self.catchup = catchup
        self.tags = list(tags or [])
        if isinstance(template_searchpath, str):
            template_searchpath = [template_searchpath]
        self.template_searchpath = list(template_searchpath or [])
        self.user_defined_macros = dict(user_defined_macros or {})
        self.is_paused_upon_creation = is_paused_upon_creation
        self.doc_md = doc_md
        self.task_dict: dict[str, BaseOperator] = {}
        self.fileloc = _caller_file()

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"

    # --- context manager -------------------------------------------------------------------------

    def __enter__(self) -> DAG:
        _context_stack.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _context_stack.pop()

    # --- tasks -----------------------------------------------------------------------------------

    def add_task(self, task: BaseOperator) -> None:
        """Add a task (``task.dag`` becomes this DAG)."""
        existing = self.task_dict.get(task.task_id)
        if existing is task:
            return
        if existing is not None:
            raise DuplicateTaskIdError(
                f"DAG {self.dag_id!r} already has a task with task_id {task.task_id!r}"
            )
        task._attach(self)
        self.task_dict[task.task_id] = task

    def add_tasks(self, tasks: Iterable[BaseOperator]) -> None:
        """Add several tasks."""
        for task in tasks:
            self.add_task(task)

    @property
    def tasks(self) -> list[BaseOperator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def get_task(self, task_id: str) -> BaseOperator:
        """The task named ``task_id``, or :class:`TaskNotFound`."""
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise TaskNotFound(f"task {task_id!r} not found in DAG {self.dag_id!r}") from None

    @property
    def roots(self) -> list[BaseOperator]:
        """Tasks with no upstream task (they can run first)."""
        return [t for t in self.task_dict.values() if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[BaseOperator]:
        """Tasks with no downstream task (they run last)."""
        return [t for t in self.task_dict.values() if not t.downstream_task_ids]

    @property
    def owner(self) -> str:
        return ", ".join(sorted({t.owner for t in self.task_dict.values() if t.owner})) or "flux"

    def topological_sort(self) -> list[BaseOperator]:
        """Tasks in an order where each comes after all its upstreams (ties by definition order)."""
        order: list[BaseOperator] = []
        remaining = {tid: len(t.upstream_task_ids) for tid, t in self.task_dict.items()}
        ready = [tid for tid in self.task_dict if remaining[tid] == 0]
        while ready:
            task_id = ready.pop(0)
            task = self.task_dict[task_id]
            order.append(task)
            for down in sorted(task.downstream_task_ids):
                remaining[down] -= 1
                if remaining[down] == 0:
                    ready.append(down)
        return order

    def sub_dag(self, task_regex: str, include_upstream: bool = False,
                include_downstream: bool = False) -> list[BaseOperator]:
        """Tasks whose id matches ``task_regex`` (search), plus relatives if asked."""
        import re

        try:
            pattern = re.compile(task_regex)
        except re.error as exc:
            raise DagDefinitionError(f"invalid task regex {task_regex!r}: {exc}") from None
        chosen = {t.task_id: t for t in self.task_dict.values() if pattern.search(t.task_id)}
        for task in list(chosen.values()):
            if include_upstream:
                chosen.update({t.task_id: t for t in task.get_flat_relatives(upstream=True)})
            if include_downstream:
                chosen.update({t.task_id: t for t in task.get_flat_relatives(upstream=False)})
        return [t for t in self.topological_sort() if t.task_id in chosen]

    # --- display ---------------------------------------------------------------------------------

    def tree_lines(self) -> list[str]:
        """The tree as lines: each last task, its upstream tasks indented below it."""
        lines: list[str] = []

        def walk(task: BaseOperator, depth: int) -> None:
            lines.append("    " * depth + repr(task))
            for upstream in task.upstream_list:
                walk(upstream, depth + 1)

        for leaf in self.leaves:
            walk(leaf, 0)
        return lines

    def tree_view(self) -> None:
        """Print the tree: each last task, then its upstream tasks indented below it."""
        for line in self.tree_lines():
            print(line)

    # --- dates -----------------------------------------------------------------------------------

    def dates_between(self, start: datetime | None, end: datetime | None) -> list[datetime]:
        """The schedule dates from ``start`` to ``end`` (defaults: the DAG's dates, today)."""
        start = as_utc(start) or self.start_date
        if start is None:
            raise DagDefinitionError(f"DAG {self.dag_id!r} has no start_date: give a start date")
        end = as_utc(end) or self.end_date or utcnow()
        if end < start:
            raise DagDefinitionError(
                f"start date {display(start)} is after end date {display(end)}"
            )
        return list(self.schedule.dates_between(start, end))

    def previous_date(self, when: datetime) -> datetime | None:
        return self.schedule.previous(when)

    def following_date(self, when: datetime) -> datetime | None:
        return self.schedule.following(when)

    # --- running ---------------------------------------------------------------------------------

    def run(
        self,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        mark_success: bool = False,
        executor: Any = None,
        task_regex: str | None = None,
        **options: Any,
    ) -> Any:
        """Backfill the DAG over a date range and return the backfill's summary."""
        from flux.backfill import BackfillJob

        job = BackfillJob(self, start_date=start_date, end_date=end_date, mark_success=mark_success,
                          executor=executor, task_regex=task_regex, **options)
        return job.run()

    def clear(
        self,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        task_regex: str | None = None,
        only_failed: bool = False,
        include_upstream: bool = False,
        include_downstream: bool = False,
        dry_run: bool = False,
    ) -> list[Any]:
        """Reset task instances so they run again; returns the instances cleared."""
        from flux.clear import clear_task_instances

        tasks = self.sub_dag(task_regex or ".*", include_upstream, include_downstream)
        return clear_task_instances(self, [t.task_id for t in tasks], start_date, end_date,
                                    only_failed=only_failed, dry_run=dry_run)


def _caller_file() -> str:
    """The file of the code that created the DAG (skipping Flux's own frames)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("flux."):
        frame = frame.f_back  # type: ignore[assignment]
    return frame.f_code.co_filename if frame is not None else "<unknown>"
