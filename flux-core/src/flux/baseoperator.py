"""``BaseOperator``: the class every task type derives from (a public, stable API for plugins).

A subclass sets ``template_fields`` (attributes rendered with Jinja before running) and implements
``execute(context)``; what it returns is pushed as the XCom ``return_value``::

    class HelloOperator(BaseOperator):
        template_fields = ("name",)

        def __init__(self, name: str, **kwargs):
            super().__init__(**kwargs)
            self.name = name

        def execute(self, context):
            print(f"hello {self.name} on {context['ds']}")
            return self.name

Arguments present in the DAG's ``default_args`` are filled in for any argument the operator's
``__init__`` (or a parent's) accepts and the caller did not pass; other keys are ignored.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from flux.dates import as_utc
from flux.exceptions import DagCycleError, DagDefinitionError
from flux.state import TriggerRule

if TYPE_CHECKING:
    from flux.dag import DAG

Callback = Callable[[dict[str, Any]], None]

_TASK_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@functools.cache
def _accepted_arguments(cls: type) -> frozenset[str]:
    """Every keyword the ``__init__`` methods along ``cls``'s MRO accept."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        init = getattr(init, "__wrapped__", init)
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                names.add(param.name)
    names.discard("self")
    return frozenset(names)


@functools.cache
def _positional_names(init: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(
        p.name for p in inspect.signature(init).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )[1:]


def _apply_defaults(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap an operator's ``__init__`` so that ``default_args`` and the current DAG fill it in."""

    @functools.wraps(init)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        if getattr(self, "_defaults_applied", False):
            init(self, *args, **kwargs)
            return
        self._defaults_applied = True
        from flux.dag import current_dag

        dag = kwargs.get("dag") or current_dag()
        defaults: dict[str, Any] = {}
        if dag is not None:
            defaults.update(dag.default_args)
            kwargs.setdefault("dag", dag)
        defaults.update(kwargs.pop("default_args", None) or {})
        if defaults:
            accepted = _accepted_arguments(type(self))
            given = set(kwargs) | set(_positional_names(init)[: len(args)])
            for key, value in defaults.items():
                if key in accepted and key not in given:
                    kwargs[key] = value
        try:
            init(self, *args, **kwargs)
        finally:
            self._defaults_applied = False

    wrapper.__wrapped__ = init  # type: ignore[attr-defined]
    return wrapper


class BaseOperator:
    """A task: one node of a DAG, run once per schedule date as a task instance.

    :param task_id: unique within its DAG (letters, digits, ``_``, ``-`` and ``.``).
    :param owner: who to ask about it (default ``[core] default_owner``).
    :param dag: the DAG it belongs to (default: the DAG of an enclosing ``with DAG(...)``).
    :param start_date: first date it runs for (default: the DAG's).
    :param end_date: last date it runs for (default: the DAG's, or open ended).
    :param depends_on_past: run only once this task succeeded (or was skipped) for the previous date.
    :param retries: how many more tries after a failure.
    :param retry_delay: how long to wait before a retry.
    :param retry_exponential_backoff: double the delay after each failed try.
    :param max_retry_delay: upper bound of the (exponential) retry delay.
    :param execution_timeout: stop and fail (or retry) a try that runs longer.
    :param trigger_rule: when to run given upstream states (see :class:`flux.state.TriggerRule`).
    :param params: values for templates (``{{ params.x }}``), merged over the DAG's params.
    :param pool: the pool whose slots limit how many such tasks run at once.
    :param pool_slots: how many slots of the pool one try takes.
    :param priority_weight: higher runs first when slots are scarce.
    :param queue: where remote executors send it.
    :param on_success_callback / on_failure_callback / on_retry_callback: called with the context.
    """

    #: attributes rendered with Jinja before ``execute`` runs
    template_fields: ClassVar[Sequence[str]] = ()
    #: a templated value ending with one of these is the name of a template file
    template_ext: ClassVar[Sequence[str]] = ()
    #: colour of this operator in the web UI
    ui_color: ClassVar[str] = "#fff"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not hasattr(init, "__wrapped__"):
            cls.__init__ = _apply_defaults(init)  # type: ignore[method-assign]

    def __init__(
        self,
        task_id: str,
        owner: str | None = None,
        dag: DAG | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        depends_on_past: bool = False,
        retries: int = 0,
        retry_delay: timedelta | float = timedelta(minutes=5),
        retry_exponential_backoff: bool = False,
        max_retry_delay: timedelta | float | None = None,
        execution_timeout: timedelta | float | None = None,
        trigger_rule: str = TriggerRule.ALL_SUCCESS,
        params: dict[str, Any] | None = None,
        pool: str | None = None,
        pool_slots: int = 1,
        priority_weight: int = 1,
        queue: str | None = None,
        on_success_callback: Callback | None = None,
        on_failure_callback: Callback | None = None,
        on_retry_callback: Callback | None = None,
        doc: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise DagDefinitionError(
                f"invalid arguments passed to {type(self).__name__} (task_id {task_id!r}): "
                f"{', '.join(sorted(unknown))}"
            )
        if not isinstance(task_id, str) or not task_id or not set(task_id) <= _TASK_ID_CHARS:
            raise DagDefinitionError(
                f"invalid task_id {task_id!r}: use letters, digits, '_', '-' and '.'"
            )
        if trigger_rule not in TriggerRule.ALL:
            raise DagDefinitionError(
                f"task {task_id!r}: unknown trigger_rule {trigger_rule!r} "
                f"(expected one of {', '.join(sorted(TriggerRule.ALL))})"
            )
        if not isinstance(retries, int) or retries < 0:
            raise DagDefinitionError(f"task {task_id!r}: retries must be a whole number >= 0")
        self.task_id = task_id
        self.owner = owner
        self.start_date = as_utc(start_date)
        self.end_date = as_utc(end_date)
        self.depends_on_past = depends_on_past
        self.retries = retries
        self.retry_delay = _as_timedelta(retry_delay)
        self.retry_exponential_backoff = retry_exponential_backoff
        self.max_retry_delay = _as_timedelta(max_retry_delay)
        self.execution_timeout = _as_timedelta(execution_timeout)
        self.trigger_rule = trigger_rule
        self.params = dict(params or {})
        self.pool = pool
        self.pool_slots = pool_slots
        self.priority_weight = priority_weight
        self.queue = queue
        self.on_success_callback = on_success_callback
        self.on_failure_callback = on_failure_callback
        self.on_retry_callback = on_retry_callback
        self.doc = doc
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self._dag: DAG | None = None
        if dag is not None:
            dag.add_task(self)

    # --- identity --------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"

    @property
    def operator_name(self) -> str:
        return type(self).__name__

    @property
    def log(self) -> logging.Logger:
        """The logger a task writes to; its records go to the task instance's log file."""
        return logging.getLogger("flux.task")

    # --- the DAG ---------------------------------------------------------------------------------

    @property
    def dag(self) -> DAG | None:
        return self._dag

    @dag.setter
    def dag(self, dag: DAG) -> None:
        dag.add_task(self)

    @property
    def has_dag(self) -> bool:
        return self._dag is not None

    def _attach(self, dag: DAG) -> None:
        """Called by ``DAG.add_task``: take the DAG's dates where the task has none."""
        if self._dag is not None and self._dag is not dag:
            raise DagDefinitionError(
                f"task {self.task_id!r} already belongs to DAG {self._dag.dag_id!r}, "
                f"cannot add it to {dag.dag_id!r}"
            )
        self._dag = dag
        if self.owner is None:
            self.owner = dag.default_args.get("owner") or _default_owner()
        if self.start_date is None:
            self.start_date = dag.start_date
        elif dag.start_date is not None:
            self.start_date = max(self.start_date, dag.start_date)
        if self.end_date is None:
            self.end_date = dag.end_date
        elif dag.end_date is not None:
            self.end_date = min(self.end_date, dag.end_date)

    # --- relationships ---------------------------------------------------------------------------

    def set_upstream(self, tasks: BaseOperator | Iterable[BaseOperator]) -> None:
        """Make ``tasks`` run before this one."""
        for task in _as_list(tasks):
            _link(task, self)

    def set_downstream(self, tasks: BaseOperator | Iterable[BaseOperator]) -> None:
        """Make ``tasks`` run after this one."""
        for task in _as_list(tasks):
            _link(self, task)

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> BaseOperator:
        # [a, b] >> self
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> BaseOperator:
        # [a, b] << self
        self.set_downstream(other)
        return self

    @property
    def upstream_list(self) -> list[BaseOperator]:
        return [self._require_dag().get_task(t) for t in sorted(self.upstream_task_ids)]

    @property
    def downstream_list(self) -> list[BaseOperator]:
        return [self._require_dag().get_task(t) for t in sorted(self.downstream_task_ids)]

    def get_flat_relatives(self, upstream: bool = False) -> list[BaseOperator]:
        """Every task downstream (or upstream) of this one, transitively."""
        dag = self._require_dag()
        seen: set[str] = set()
        stack = list(self.upstream_task_ids if upstream else self.downstream_task_ids)
        while stack:
            task_id = stack.pop()
            if task_id in seen:
                continue
            seen.add(task_id)
            task = dag.get_task(task_id)
            stack.extend(task.upstream_task_ids if upstream else task.downstream_task_ids)
        return [dag.get_task(t) for t in sorted(seen)]

    def _require_dag(self) -> DAG:
        if self._dag is None:
            raise DagDefinitionError(f"task {self.task_id!r} is not in a DAG")
        return self._dag

    # --- running ---------------------------------------------------------------------------------

    def execute(self, context: dict[str, Any]) -> Any:
        """Do the work of one task instance. Override this; raise to fail the try."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute(context)")

    def pre_execute(self, context: dict[str, Any]) -> None:
        """Called right before ``execute`` (after templates were rendered)."""

    def post_execute(self, context: dict[str, Any], result: Any = None) -> None:
        """Called right after ``execute`` succeeded."""

    def on_kill(self) -> None:
        """Called when the running task is being stopped: release outside resources here."""

    def resolve_template_files(self) -> None:
        """Hook for operators that read template files themselves (rarely needed)."""

    def render_template_fields(self, context: dict[str, Any]) -> dict[str, Any]:
        """Render every ``template_fields`` attribute in place; return the rendered values."""
        from flux.templating import render_operator_fields

        return render_operator_fields(self, context)

    def run(
        self,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        force: bool = False,
        mark_success: bool = False,
    ) -> dict[datetime, str | None]:
        """Run this task for every schedule date from ``start_date`` to ``end_date``, in order.

        Works on a task outside any DAG too (it then belongs to an ad-hoc DAG named after its
        owner). States are stored; a date that already succeeded is reported and skipped unless
        ``force``. Returns the final state of each date.
        """
        from flux.taskrunner import run_task_over_dates

        if self._dag is None:
            import re

            from flux.dag import DAG

            owner = re.sub(r"[^A-Za-z0-9_.-]", "_", self.owner or _default_owner())
            DAG(dag_id=f"adhoc_{owner}", start_date=self.start_date).add_task(self)
        return run_task_over_dates(self, start_date, end_date, force=force, mark_success=mark_success)

    def retry_delay_for(self, try_number: int) -> timedelta:
        """The wait before the try after ``try_number`` failed."""
        delay = self.retry_delay or timedelta(0)
        if self.retry_exponential_backoff:
            # 2**(n-1) growth, with the exponent bounded so a large try number cannot overflow.
            delay = delay * (2 ** min(max(try_number - 1, 0), 30))
        if self.max_retry_delay is not None:
            delay = min(delay, self.max_retry_delay)
        return delay


def _default_owner() -> str:
    from flux.config import get_config

    return str(get_config().get("core", "default_owner", "flux"))


def _as_timedelta(value: timedelta | float | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    raise DagDefinitionError(f"expected a timedelta or a number of seconds, got {value!r}")


def _as_list(tasks: BaseOperator | Iterable[BaseOperator]) -> list[BaseOperator]:
    if isinstance(tasks, BaseOperator):
        return [tasks]
    items = list(tasks)
    for item in items:
        if not isinstance(item, BaseOperator):
            raise DagDefinitionError(f"expected a task or a list of tasks, got {item!r}")
    return items


def _link(upstream: BaseOperator, downstream: BaseOperator) -> None:
    """Add the edge upstream -> downstream, putting both in one DAG and refusing cycles."""
    if upstream is downstream:
        raise DagCycleError(f"task {upstream.task_id!r} cannot depend on itself")
    dag = upstream.dag or downstream.dag
    if dag is not None:
        for task in (upstream, downstream):
            if task.dag is None:
                dag.add_task(task)
            elif task.dag is not dag:
                raise DagDefinitionError(
                    f"tasks {upstream.task_id!r} and {downstream.task_id!r} are in different DAGs"
                )
    if downstream.task_id in upstream.downstream_task_ids:
        return
    if dag is not None and _reaches(dag, downstream.task_id, upstream.task_id):
        raise DagCycleError(
            f"cycle in DAG {dag.dag_id!r}: {upstream.task_id!r} >> {downstream.task_id!r} "
            f"closes a loop ({downstream.task_id!r} already runs before {upstream.task_id!r})"
        )
    upstream.downstream_task_ids.add(downstream.task_id)
    downstream.upstream_task_ids.add(upstream.task_id)


def _reaches(dag: DAG, start: str, target: str) -> bool:
    """Is ``target`` downstream of ``start``?"""
    stack, seen = [start], set()
    while stack:
        task_id = stack.pop()
        if task_id == target:
            return True
        if task_id in seen:
            continue
        seen.add(task_id)
        task = dag.task_dict.get(task_id)
        if task is not None:
            stack.extend(task.downstream_task_ids)
    return False


BaseOperator.__init__ = _apply_defaults(BaseOperator.__init__)  # type: ignore[method-assign]
