"""Running one task instance: dependencies, the ``running`` claim, the log, the try, the outcome.

This is what ``flux run``, ``op.run()`` and every executor's worker call. Sessions are kept short:
none is open while the task's own code runs, so a long task holds no database lock.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flux import tasklog
from flux.dates import as_utc, display, utcnow
from flux.exceptions import (
    FluxError,
    RescheduleTask,
    TaskFailed,
    TaskKilled,
    TaskSkipped,
    TaskStopEscalated,
    TaskTimeout,
    TemplateError,
)
from flux.state import State

if TYPE_CHECKING:
    from flux.baseoperator import BaseOperator
    from flux.models import TaskInstance

logger = logging.getLogger("flux.task")
BANNER = "-" * 80
#: Added to the grace period before a stop request is escalated: a cooperating task may itself
#: spend the grace period stopping its subprocesses (a BashOperator's SIGTERM, then SIGKILL).
ESCALATION_SLACK_SECONDS = 1.0
HOSTNAME = socket.gethostname()


@dataclass
class RunOptions:
    """How to run a task instance (the flags of ``flux run``)."""

    force: bool = False
    mark_success: bool = False
    ignore_dependencies: bool = False
    #: run without recording anything (``flux test``): the log goes to stdout
    test_mode: bool = False
    #: the state the caller (an executor) expects the instance in; None = any runnable state
    expect_state: Any = None
    #: the try count the caller expects before this try (fencing against redelivered requests)
    expect_try: int | None = None
    job_id: int | None = None
    dag_run_conf: dict[str, Any] | None = None
    run_id: str | None = None
    #: called with the log file's path as soon as it is known ("Logging into: ...")
    announce: Callable[[str], None] | None = None
    #: log records emitted before the log file was known (DAG loading), written to it first
    early_records: list[logging.LogRecord] = field(default_factory=list)


@dataclass
class RunResult:
    """What became of a task instance: its state, the try, the log file and why."""

    state: str | None
    try_number: int
    ran: bool
    log_path: str | None = None
    message: str = ""
    return_value: Any = None


@functools.lru_cache(maxsize=1)
def _select_instance() -> Any:
    from sqlalchemy import bindparam, select

    from flux.models import TaskInstance

    table = TaskInstance.__table__
    return select(table).where(table.c.dag_id == bindparam("d"), table.c.task_id == bindparam("t"),
                               table.c.execution_date == bindparam("e"))


def _load_or_create(conn: Any, task: BaseOperator, execution_date: datetime) -> TaskInstance:
    from sqlalchemy import insert

    from flux.models import TaskInstance

    params = {"d": task.dag.dag_id, "t": task.task_id, "e": execution_date}  # type: ignore[union-attr]
    row = conn.execute(_select_instance(), params).mappings().first()
    if row is None:
        conn.execute(insert(TaskInstance.__table__).values(
            dag_id=params["d"], task_id=params["t"], execution_date=execution_date, state=None,
            try_number=0, max_tries=task.retries, operator=task.operator_name, pool=task.pool,
            queue=task.queue, priority_weight=task.priority_weight))
        row = conn.execute(_select_instance(), params).mappings().one()  # with column defaults
    # A plain (session-free) object: every change to the row goes through the guarded updates of
    # flux.transitions anyway, and the ORM's identity bookkeeping costs more than the query.
    ti = TaskInstance(**row)
    ti.task = task
    return ti


def run_task_instance(task: BaseOperator, execution_date: datetime,
                      options: RunOptions | None = None) -> RunResult:
    """Run one task instance of ``task`` (which must be in a DAG) for ``execution_date``."""
    from flux.db import retry_transaction

    options = options or RunOptions()
    execution_date = as_utc(execution_date)  # type: ignore[assignment]
    if options.test_mode:
        return _run_test_mode(task, execution_date, options)
    claim = retry_transaction(_claim, task, execution_date, options, what="starting a try")
    if isinstance(claim, RunResult):
        return claim
    ti, previous_state = claim
    return _execute_try(ti, task, options, previous_state)


def _claim(task: BaseOperator, execution_date: datetime,
           options: RunOptions) -> RunResult | tuple[TaskInstance, str | None]:
    """Check that the instance may run and move it to ``running`` at its next try (one
    transaction); a RunResult says why it did not."""
    from flux.db import commit_uncertain, transaction
    from flux.deps import evaluate
    from flux.transitions import ANY, transition

    now = utcnow()
    with transaction() as conn:
        ti = _load_or_create(conn, task, execution_date)
        previous_state, previous_try = ti.state, ti.try_number
        if commit_uncertain() and _claimed_by_this_process(ti, options):
            return ti, options.expect_state  # our earlier attempt's claim went through after all
        if previous_state == State.SUCCESS and not options.force:
            message = (f"Task instance {task!r} for {display(execution_date)} already succeeded; "
                       "force it to run again")
            logger.info(message)
            return RunResult(ti.state, ti.try_number, ran=False, message=message)
        if previous_state == State.RUNNING and not options.force:
            message = (f"Task instance {task!r} for {display(execution_date)} is already running "
                       f"(pid {ti.pid} on {ti.hostname})")
            logger.info(message)
            return RunResult(ti.state, ti.try_number, ran=False, message=message)
        if (options.expect_state is not None and previous_state != options.expect_state) or (
                options.expect_try is not None and previous_try != options.expect_try):
            message = (f"Task instance {task!r} for {display(execution_date)} is {previous_state}, "
                       f"try {previous_try}, not {options.expect_state} at try {options.expect_try}: "
                       "someone else handled it")
            logger.info(message)
            return RunResult(ti.state, ti.try_number, ran=False, message=message)
        if not options.ignore_dependencies and not options.mark_success:
            readiness = evaluate(ti, task, conn, now)
            if not readiness.runnable:
                if readiness.outcome in (State.UPSTREAM_FAILED, State.SKIPPED):
                    transition(conn, ti, readiness.outcome, expect_state=previous_state,
                               expect_try=previous_try, end_date=now, note=readiness.reason)
                message = f"Dependencies not met for {task!r} on {display(execution_date)}: " \
                          f"{readiness.reason}"
                logger.info(message)
                return RunResult(ti.state, ti.try_number, ran=False, message=message)
        if options.mark_success:
            transition(conn, ti, State.SUCCESS, expect_state=previous_state,
                       expect_try=previous_try, start_date=now, end_date=now, duration=0.0,
                       note="marked success without running")
            logger.info("Marked %r for %s as success without running it", task, display(execution_date))
            return RunResult(State.SUCCESS, ti.try_number, ran=False, message="marked success")
        try_number = previous_try + 1
        values: dict[str, Any] = dict(
            try_number=try_number, hostname=HOSTNAME, pid=os.getpid(), heartbeat=now,
            end_date=None, duration=None, next_try_at=None, job_id=options.job_id,
            operator=task.operator_name, pool=task.pool, queue=task.queue,
            priority_weight=task.priority_weight, note=None,
        )
        if previous_state != State.UP_FOR_RESCHEDULE or ti.start_date is None:
            values["start_date"] = now
        if previous_state not in (State.UP_FOR_RETRY, State.UP_FOR_RESCHEDULE, State.QUEUED):
            # A fresh or cleared instance gets its full number of retries again. A queued one
            # keeps its count: whoever queued it (backfill, scheduler) set it when it was
            # created or cleared, and a retry reaches a worker as queued too.
            values["max_tries"] = previous_try + task.retries
        claimed = transition(conn, ti, State.RUNNING,
                             expect_state=previous_state if not options.force else ANY,
                             expect_try=previous_try, **values)
        if not claimed:
            message = f"{task!r} for {display(execution_date)} was claimed by another process"
            logger.info(message)
            return RunResult(None, previous_try, ran=False, message=message)
        if previous_try > 0:  # an earlier try may have left values behind
            from flux import xcom

            xcom.clear(conn, ti.dag_id, ti.task_id, ti.execution_date)
    return ti, previous_state


def _claimed_by_this_process(ti: TaskInstance, options: RunOptions) -> bool:
    return (ti.state == State.RUNNING and ti.pid == os.getpid() and ti.hostname == HOSTNAME
            and (options.expect_try is None or ti.try_number == options.expect_try + 1))


def _execute_try(ti: TaskInstance, task: BaseOperator, options: RunOptions,
                 previous_state: str | None) -> RunResult:
    from flux.connections import clear_secrets

    # a long-lived worker must not mask an earlier task's secrets in this task's log
    clear_secrets()
    path = tasklog.log_path(ti.dag_id, ti.task_id, ti.execution_date, ti.try_number)
    if options.announce:
        options.announce(str(path))
    handler = tasklog.make_handler(path)
    for record in options.early_records:
        handler.handle(record)
    outcome = _Outcome()
    with tasklog.capture(handler):
        try:
            with _Heartbeat(ti):
                _run_body(ti, task, options, outcome)
        except KeyboardInterrupt:
            # Ctrl-C: record the try as failed (never leave it running), then stop the caller too.
            outcome.state, outcome.message = None, "TaskKilled: interrupted (Ctrl-C)"
            outcome.exception = TaskKilled("interrupted")
            _safe_on_kill(task)
            _finish(ti, task, options, outcome)
            raise
        _finish(ti, task, options, outcome)
    return RunResult(outcome.state, ti.try_number, ran=True, log_path=str(path),
                     message=outcome.message, return_value=outcome.return_value)


@dataclass
class _Outcome:
    state: str | None = None
    message: str = ""
    return_value: Any = None
    rendered: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    next_try_at: datetime | None = None
    exception: BaseException | None = None


def _run_body(ti: TaskInstance, task: BaseOperator, options: RunOptions, outcome: _Outcome) -> None:
    """Render, execute and classify the result; never raises (except KeyboardInterrupt)."""
    from flux.context import build_context

    logger.info("\n%s\nNew run starting @%s\n%s", BANNER, utcnow().replace(tzinfo=None).isoformat(),
                BANNER)
    logger.info("Executing %r for %s", task, display(ti.execution_date))
    started = time.monotonic()
    try:
        task = _fresh_copy(task)
        ti.task = task
        context = build_context(ti, task, options.dag_run_conf, options.run_id)
        outcome.context = context
        outcome.rendered = task.render_template_fields(context)
        with _Deadline(task):
            task.pre_execute(context)
            result = _call_execute(task, context)
            task.post_execute(context, result)
        if result is not None and not options.test_mode:
            from flux import xcom

            xcom.push(ti.dag_id, ti.task_id, ti.execution_date, xcom.RETURN_VALUE, result)
        if result is not None:
            logger.info("Returned value: %s", tasklog.mask(repr(result))[:1000])
        outcome.state, outcome.return_value = State.SUCCESS, result
    except TaskSkipped as exc:
        outcome.state, outcome.message = State.SKIPPED, str(exc) or "skipped"
        logger.info("Task skipped: %s", outcome.message)
    except RescheduleTask as exc:
        outcome.state, outcome.next_try_at = State.UP_FOR_RESCHEDULE, as_utc(exc.reschedule_at)
        outcome.message = f"rescheduled to {exc.reschedule_at}"
        logger.info("Sensor condition not met; rescheduled to %s", exc.reschedule_at)
    except (TaskFailed, TemplateError, TaskTimeout, TaskKilled, TaskStopEscalated) as exc:
        outcome.exception = exc
        outcome.message = f"{type(exc).__name__}: {exc}"
        logger.error("Task failed: %s", outcome.message)
        if isinstance(exc, (TaskTimeout, TaskKilled, TaskStopEscalated)):
            _safe_on_kill(task)
    except Exception as exc:
        outcome.exception = exc
        outcome.message = f"{type(exc).__name__}: {exc}"
        logger.error("Task failed with an exception:\n%s", traceback.format_exc())
    finally:
        outcome_duration = time.monotonic() - started
        outcome.context["duration"] = outcome_duration


def _fresh_copy(task: BaseOperator) -> BaseOperator:
    """A copy of the task to render into, so rendering never changes the DAG's own object."""
    import copy

    clone = copy.copy(task)
    for name in task.template_fields:
        value = getattr(task, name, None)
        if isinstance(value, (list, dict, tuple)):
            setattr(clone, name, copy.deepcopy(value))
    return clone


def _call_execute(task: BaseOperator, context: dict[str, Any]) -> Any:
    """Call ``execute``; the seed's ``execute(self, execution_date)`` style is accepted too."""
    execute = task.execute
    function = getattr(execute, "__func__", None)
    bound = function is not None
    if _takes_execution_date(function if bound else execute, bound):
        return execute(context["execution_date"])  # type: ignore[arg-type]
    return execute(context)


@functools.lru_cache(maxsize=1024)
def _takes_execution_date(execute: Callable[..., Any], bound: bool) -> bool:
    """Whether ``execute``'s first parameter (after ``self`` when it is a method) is
    ``execution_date`` (cached: inspecting a signature costs more than a small task)."""
    import inspect

    try:
        params = list(inspect.signature(execute).parameters)
    except (TypeError, ValueError):
        return False
    return params[int(bound):int(bound) + 1] == ["execution_date"]


def _safe_on_kill(task: BaseOperator) -> None:
    try:
        task.on_kill()
    except Exception:
        logger.exception("on_kill of %r failed", task)


def _finish(ti: TaskInstance, task: BaseOperator, options: RunOptions, outcome: _Outcome) -> None:
    """Store the outcome (if the try is still ours) and run the callbacks."""
    from flux.db import retry_transaction

    now = utcnow()
    duration = (now - ti.start_date).total_seconds() if ti.start_date else None
    values: dict[str, Any] = dict(end_date=now, duration=duration, note=outcome.message[:1000] or None,
                                  rendered_fields=_rendered_json(outcome.rendered))
    state = outcome.state
    callback = task.on_success_callback
    if state is None:  # failed: retry or not
        if ti.try_number <= ti.max_tries:
            state = State.UP_FOR_RETRY
            first_try = ti.max_tries - task.retries
            delay = task.retry_delay_for(ti.try_number - first_try)
            values["next_try_at"] = now + delay
            callback = task.on_retry_callback
            logger.info("Marking task as UP_FOR_RETRY; try %d of %d, next in %s",
                        ti.try_number, ti.max_tries + 1, delay)
        else:
            state = State.FAILED
            callback = task.on_failure_callback
            logger.info("Marking task as FAILED after try %d", ti.try_number)
    elif state == State.UP_FOR_RESCHEDULE:
        values["next_try_at"] = outcome.next_try_at
        values["try_number"] = ti.try_number - 1  # a reschedule is not a try
        callback = None
    elif state == State.SKIPPED:
        callback = None
    else:
        logger.info("Marking task as %s", state.upper())
    if not options.test_mode:
        stored = retry_transaction(_store_outcome, ti, state, ti.try_number, values,
                                   what="storing the outcome of a try")
        if not stored:
            logger.warning("The task instance was changed by someone else while it ran "
                           "(cleared or marked); its outcome %s is not stored", state)
            return
    else:
        ti.state = state
    outcome.state = state
    if callback is not None and outcome.context:
        outcome.context["exception"] = outcome.exception
        try:
            callback(outcome.context)
        except Exception:
            logger.exception("callback %r of %r failed", callback, task)


def _store_outcome(ti: TaskInstance, state: str, try_number: int, values: dict[str, Any]) -> bool:
    """Move the instance from ``running`` at ``try_number`` to ``state``; False if it was no
    longer running as this try (cleared, marked or taken over)."""
    from sqlalchemy.orm.attributes import set_committed_value

    from flux.db import commit_uncertain, transaction
    from flux.transitions import transition

    # an attempt whose commit failed may have changed the object already
    set_committed_value(ti, "state", State.RUNNING)
    set_committed_value(ti, "try_number", try_number)
    with transaction() as conn:
        if transition(conn, ti, state, expect_state=State.RUNNING, expect_try=try_number, **values):
            return True
        if not commit_uncertain():
            return False
        stored = conn.execute(_select_instance(), {"d": ti.dag_id, "t": ti.task_id,
                                                   "e": ti.execution_date}).mappings().first()
    # our earlier attempt's change went through after all (nobody else writes these values)
    expected_try = values.get("try_number", try_number)
    if stored is None or (stored["state"], stored["try_number"]) != (state, expected_try) \
            or stored["end_date"] != values["end_date"]:
        return False
    for name, value in values.items():
        set_committed_value(ti, name, value)
    set_committed_value(ti, "state", state)
    return True


def _rendered_json(rendered: dict[str, Any]) -> str | None:
    if not rendered:
        return None
    text = json.dumps({k: v if isinstance(v, (str, int, float, bool, list, dict)) or v is None
                       else repr(v) for k, v in rendered.items()}, default=repr)
    return tasklog.mask(text)


class _Deadline:
    """Raise :class:`TaskTimeout` in the task when its ``execution_timeout`` passes.

    Uses SIGALRM, so it works only in the main thread; elsewhere the executor's supervisor enforces
    the timeout from outside. A kill request (SIGTERM, or the heartbeat seeing the instance changed
    by someone else) arrives the same way and raises :class:`TaskKilled`.

    Both are Exceptions, which a task's own ``except Exception`` may swallow. So each one also arms
    an escalation: if the task still runs ``[core] killed_task_grace_seconds`` (plus
    :data:`ESCALATION_SLACK_SECONDS`) later,
    :class:`TaskStopEscalated` (a BaseException) is raised, and raised again every grace period
    after. A task that swallowed its timeout and then returned is failed all the same.
    """

    def __init__(self, task: BaseOperator) -> None:
        self.task = task
        self.active = threading.current_thread() is threading.main_thread()
        self.previous: dict[int, Any] = {}
        self.stop_reason: str | None = None
        self.timed_out = False

    def __enter__(self) -> _Deadline:
        if not self.active:
            return self
        from flux.config import get_config

        timeout = self.task.execution_timeout
        grace = max(float(get_config().get("core", "killed_task_grace_seconds", 5.0)), 0.05)

        def escalate_later() -> None:
            if signal.SIGALRM not in self.previous:  # no timeout: the alarm is ours from now on
                self.previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, grace + ESCALATION_SLACK_SECONDS)

        def on_alarm(signum: int, frame: Any) -> None:
            if self.stop_reason is not None:  # the task ignored the first request
                escalate_later()
                raise TaskStopEscalated(f"{self.stop_reason}; the task went on running for "
                                        f"{grace + ESCALATION_SLACK_SECONDS:g} s, so it is stopped")
            self.timed_out = True
            self.stop_reason = f"execution_timeout of {timeout} exceeded"
            escalate_later()
            raise TaskTimeout(self.stop_reason)

        def on_term(signum: int, frame: Any) -> None:
            reason = f"received signal {signal.Signals(signum).name}"
            if self.stop_reason is not None:
                raise TaskStopEscalated(f"{self.stop_reason}; then {reason} again")
            self.stop_reason = reason
            escalate_later()
            raise TaskKilled(reason)

        self.previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, on_term)
        self.previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, on_term)
        if timeout is not None:
            self.previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, max(timeout.total_seconds(), 0.001))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if not self.active:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in list(self.previous.items()):
            signal.signal(signum, handler)
        if exc_type is None and self.timed_out:
            raise TaskTimeout(f"{self.stop_reason} (the task caught the timeout and returned)")


class _Heartbeat:
    """Refresh the running instance's heartbeat; stop the task if someone else changed it.

    One daemon thread per process serves every try the process runs (a worker runs thousands):
    starting a thread per try would cost more than a small task itself.
    """

    _lock = threading.Lock()
    _thread: threading.Thread | None = None
    _current: tuple[TaskInstance, int | None, bool] | None = None
    _wake = threading.Event()

    def __init__(self, ti: TaskInstance) -> None:
        self.ti = ti

    def __enter__(self) -> _Heartbeat:
        cls = type(self)
        in_main = threading.current_thread() is threading.main_thread()
        with cls._lock:
            cls._current = (self.ti, threading.current_thread().ident, in_main)
            if cls._thread is None or not cls._thread.is_alive():
                cls._thread = threading.Thread(target=cls._beat, name="flux-heartbeat", daemon=True)
                cls._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with type(self)._lock:
            type(self)._current = None

    @classmethod
    def _beat(cls) -> None:
        from flux.config import get_config

        interval = float(get_config().get("scheduler", "heartbeat_seconds", 5.0))
        watched: TaskInstance | None = None
        while True:
            time.sleep(interval)
            with cls._lock:
                current = cls._current
            if current is None:
                watched = None
                continue
            ti, ident, in_main = current
            if ti is not watched:  # a try that started since the last beat wrote its own heartbeat
                watched = ti
                continue
            if not cls._still_running(ti):
                with cls._lock:
                    if cls._current is not current:
                        continue
                logger.warning("The task instance is no longer running as this try (cleared, "
                               "marked or taken over): stopping the task")
                if in_main and ident is not None:
                    signal.pthread_kill(ident, signal.SIGUSR1)
                watched = None

    @classmethod
    def _after_fork(cls) -> None:
        # the parent's thread does not exist in a forked child, and its lock may be held
        cls._lock = threading.Lock()
        cls._thread = None
        cls._current = None

    @staticmethod
    def _still_running(ti: TaskInstance) -> bool:
        from flux.db import transaction

        try:
            with transaction() as conn:
                return bool(conn.execute(_beat_statement(), {
                    "d": ti.dag_id, "t": ti.task_id, "e": ti.execution_date, "n": ti.try_number,
                    "now": utcnow()}).rowcount)
        except FluxError as exc:  # database away for a moment: try again next beat
            logger.warning("heartbeat failed: %s", exc)
            return True


@functools.lru_cache(maxsize=1)
def _beat_statement() -> Any:
    """Refresh the heartbeat of a try that is still running (no row changes if it is not)."""
    from sqlalchemy import bindparam, update

    from flux.models import TaskInstance

    table = TaskInstance.__table__
    return update(table).where(
        table.c.dag_id == bindparam("d"), table.c.task_id == bindparam("t"),
        table.c.execution_date == bindparam("e"), table.c.try_number == bindparam("n"),
        table.c.state == State.RUNNING,
    ).values(heartbeat=bindparam("now", type_=table.c.heartbeat.type))


os.register_at_fork(after_in_child=_Heartbeat._after_fork)


def _run_test_mode(task: BaseOperator, execution_date: datetime, options: RunOptions) -> RunResult:
    """``flux test``: run without recording anything; the log goes to stdout."""
    from flux.models import TaskInstance

    ti = TaskInstance(dag_id=task.dag.dag_id, task_id=task.task_id,  # type: ignore[union-attr]
                      execution_date=execution_date, state=State.RUNNING, try_number=1,
                      max_tries=0, start_date=utcnow())
    ti.task = task
    outcome = _Outcome()
    with tasklog.capture(tasklog.make_handler(None)):
        _run_body(ti, task, options, outcome)
        _finish(ti, task, options, outcome)
    return RunResult(outcome.state, 1, ran=True, message=outcome.message,
                     return_value=outcome.return_value)


def run_task_over_dates(task: BaseOperator, start_date: datetime | None, end_date: datetime | None,
                        force: bool = False, mark_success: bool = False) -> dict[datetime, str | None]:
    """``op.run()``: one task instance per schedule date, in order, each stored."""
    dag = task.dag
    assert dag is not None
    start = as_utc(start_date) or task.start_date or dag.start_date
    if start is None:
        from flux.exceptions import DagDefinitionError

        raise DagDefinitionError(f"task {task.task_id!r} has no start_date: pass start_date=")
    end = as_utc(end_date) or task.end_date or utcnow()
    states: dict[datetime, str | None] = {}
    for when in dag.dates_between(start, end):
        result = run_task_instance(task, when, RunOptions(force=force, mark_success=mark_success,
                                                          ignore_dependencies=False))
        states[when] = result.state
    return states
