"""``BaseExecutor``: the contract every executor implements (a public, stable API for plugins).

The scheduler and ``flux backfill`` decide *what* runs; an executor only *runs* it. They hand it
:class:`TaskRequest` objects with :meth:`BaseExecutor.queue_task` and collect
:class:`TaskEvent` objects from :meth:`BaseExecutor.get_events` once the tries ended. The process
that runs a try (a worker) writes the task instance's states itself, through
:func:`flux.executors.base.execute_request`, exactly as ``flux run`` does.

A minimal executor::

    class InlineExecutor(BaseExecutor):
        executor_name = "inline"

        def get_events(self, timeout=0.0):
            events = [execute_request(request) for request in self.take_pending()]
            return events
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from flux.exceptions import ExecutorError

if TYPE_CHECKING:
    from flux.dag import DAG

TaskKey = tuple[str, str, datetime]

#: DAGs known to this process by id; workers forked from it find them here without a file
#: (``dag.run()`` from a notebook, where the DAG has no file to import).
_local_dags: dict[str, DAG] = {}


def register_dag(dag: DAG) -> None:
    """Make ``dag`` available to the workers this process starts (before it starts them)."""
    _local_dags[dag.dag_id] = dag


@dataclass(frozen=True)
class TaskRequest:
    """One try of one task instance to run; picklable, so it can cross process boundaries.

    ``try_number`` is the try this request is for: a worker runs it only if the instance is still
    ``queued`` at ``try_number - 1`` tries, so a redelivered request never runs a try twice.
    """

    dag_id: str
    task_id: str
    execution_date: datetime
    try_number: int
    dag_file: str | None = None
    mark_success: bool = False
    pool: str | None = None
    queue: str | None = None
    priority_weight: int = 1
    run_id: str | None = None
    conf: dict[str, Any] | None = None
    job_id: int | None = None
    #: seconds after which a supervisor may kill the worker (execution_timeout plus a grace period)
    hard_timeout: float | None = None

    @property
    def key(self) -> TaskKey:
        return (self.dag_id, self.task_id, self.execution_date)

    def command(self) -> list[str]:
        """The equivalent command line (what a remote worker would run)."""
        cmd = ["flux", "run", self.dag_id, self.task_id,
               self.execution_date.replace(tzinfo=None).isoformat()]
        if self.dag_file:
            cmd += ["-sd", self.dag_file]
        if self.mark_success:
            cmd.append("--mark_success")
        return cmd


@dataclass
class TaskEvent:
    """What became of a request: the instance's state after the try (None if unknown)."""

    key: TaskKey
    state: str | None
    try_number: int
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class BaseExecutor:
    """Runs task instance tries handed to it, at most ``parallelism`` at once.

    Subclasses set ``executor_name`` (the name in ``[core] executor`` and ``--executor``) and
    implement :meth:`get_events` (and usually :meth:`start`, :meth:`end`, :meth:`terminate`).
    """

    executor_name: ClassVar[str] = ""
    #: whether tries run in other processes than the one that queues them
    runs_out_of_process: ClassVar[bool] = True
    #: whether the processes running tries are forked from the queuing one (or are it), so they
    #: see DAGs given to :func:`register_dag`; if False, every request names its DAG file
    shares_memory: ClassVar[bool] = False

    def __init__(self, parallelism: int | None = None) -> None:
        if parallelism is None:
            from flux.config import get_config

            parallelism = int(get_config().get("core", "parallelism", 4))
        if parallelism < 1:
            raise ExecutorError(f"parallelism must be at least 1, got {parallelism}")
        self.parallelism = parallelism
        self.pending: list[TaskRequest] = []
        self.running: dict[TaskKey, TaskRequest] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} parallelism={self.parallelism}>"

    def start(self) -> None:
        """Prepare to run (start workers, connect to a broker...)."""

    def queue_task(self, request: TaskRequest) -> None:
        """Accept a try to run; it starts as soon as a slot is free."""
        if request.key in self.running or any(r.key == request.key for r in self.pending):
            raise ExecutorError(f"{request.key} is already queued in {self!r}")
        self.pending.append(request)

    def take_pending(self, limit: int | None = None) -> list[TaskRequest]:
        """Move up to ``limit`` (default: the open slots) pending requests to ``running``."""
        limit = self.open_slots if limit is None else limit
        taken, self.pending = self.pending[:limit], self.pending[limit:]
        for request in taken:
            self.running[request.key] = request
        return taken

    @property
    def open_slots(self) -> int:
        """How many more tries may start now."""
        return max(self.parallelism - len(self.running), 0)

    @property
    def has_work(self) -> bool:
        return bool(self.pending or self.running)

    def get_events(self, timeout: float = 0.0) -> list[TaskEvent]:
        """Start what fits, then return the tries that ended, waiting up to ``timeout`` for one."""
        raise NotImplementedError

    def heartbeat(self) -> None:
        """Called regularly by the job: check workers' health, start pending work."""

    def end(self) -> None:
        """Wait for every running try to end, then stop."""

    def terminate(self) -> None:
        """Stop every running try now (they are marked failed by their workers) and stop."""

    def finished(self, event: TaskEvent) -> TaskEvent:
        """Bookkeeping for subclasses: forget a finished try."""
        self.running.pop(event.key, None)
        return event


def resolve_task(request: TaskRequest) -> Any:
    """The operator object a request names: from its DAG file (cached) or this process's DAGs."""
    from flux.exceptions import DagNotFound

    dag = None
    if request.dag_file:
        from flux.dagbag import get_dag_from_file

        dag = get_dag_from_file(request.dag_file, request.dag_id)
    else:
        dag = _local_dags.get(request.dag_id)
    if dag is None:
        raise DagNotFound(f"DAG {request.dag_id!r} is not known to this worker "
                          f"(file: {request.dag_file or 'none'})")
    return dag.get_task(request.task_id)


def execute_request(request: TaskRequest) -> TaskEvent:
    """Run one request in this process, exactly as ``flux run`` would; never raises FluxError."""
    from flux.exceptions import DatabaseError, DatabaseUnavailable, FluxError
    from flux.state import State
    from flux.taskrunner import RunOptions, run_task_instance

    try:
        task = resolve_task(request)
        result = run_task_instance(task, request.execution_date, RunOptions(
            mark_success=request.mark_success, ignore_dependencies=True,
            expect_state=State.QUEUED, expect_try=request.try_number - 1, job_id=request.job_id,
            run_id=request.run_id, dag_run_conf=request.conf))
    except DatabaseUnavailable as exc:
        # Nothing more can be recorded: the state is unknown (None), and what the database says
        # once it is back is the truth (a try left running there is a zombie then).
        return TaskEvent(request.key, None, request.try_number, message=str(exc))
    except FluxError as exc:
        try:
            fail_unstarted(request, str(exc))
        except DatabaseError as db_exc:
            return TaskEvent(request.key, None, request.try_number, message=str(db_exc))
        return TaskEvent(request.key, State.FAILED, request.try_number, message=str(exc))
    return TaskEvent(request.key, result.state, result.try_number, message=result.message)


def fail_unstarted(request: TaskRequest, reason: str) -> None:
    """Fail a queued instance that could not even start (its DAG file broke, say)."""
    from flux.db import retry_transaction

    retry_transaction(_fail_unstarted, request, reason, what="failing a try that could not start")


def _fail_unstarted(request: TaskRequest, reason: str) -> None:
    from flux.dates import utcnow
    from flux.db import session_scope
    from flux.models import TaskInstance
    from flux.state import State
    from flux.transitions import transition

    with session_scope() as session:
        ti = session.get(TaskInstance, request.key)
        if ti is not None and ti.state == State.QUEUED:
            transition(session, ti, State.FAILED, expect_state=State.QUEUED,
                       expect_try=ti.try_number, end_date=utcnow(), note=reason[:1000])


def handle_lost_try(key: TaskKey, try_number: int, reason: str) -> str | None:
    """A worker died running ``key``: fail the try, or set it up for retry. Returns the new state.

    Only a try that is still ``running`` (or ``queued``) at ``try_number`` is touched, so a try the
    worker managed to finish keeps its outcome. When several processes notice the same lost try at
    once, only the one whose state change went through runs the callback; the others return None.
    """
    from flux.dates import utcnow
    from flux.db import retry_transaction

    state, changed = retry_transaction(_record_lost_try, key, try_number, reason, utcnow(),
                                       what="recording a lost try")
    if changed:
        _run_lost_callbacks(key, state, reason)  # type: ignore[arg-type]
    return state


def _record_lost_try(key: TaskKey, try_number: int, reason: str,
                     now: datetime) -> tuple[str | None, bool]:
    """The transaction of :func:`handle_lost_try`: (the state now, whether this call set it)."""
    from flux.db import commit_uncertain, session_scope
    from flux.models import TaskInstance
    from flux.state import State
    from flux.transitions import transition

    with session_scope() as session:
        ti = session.get(TaskInstance, key)
        if ti is None:
            return None, False
        if ti.state not in (State.RUNNING, State.QUEUED):
            # after a commit that failed on the way back, the change found may be our own
            ours = commit_uncertain() and ti.try_number == try_number and ti.end_date == now \
                and ti.note == reason[:1000]
            return ti.state, ours
        # a queued instance has not started the try yet: it is at try_number - 1
        if ti.try_number != (try_number if ti.state == State.RUNNING else try_number - 1):
            return ti.state, False  # another try started since: it is not the lost one
        expected_state, expected_try = ti.state, ti.try_number
        if ti.state == State.QUEUED:
            # it never started: count it as a try that failed at once
            values: dict[str, Any] = {"try_number": ti.try_number + 1}
            tries = ti.try_number + 1
        else:
            values, tries = {}, ti.try_number
        if tries <= ti.max_tries:
            state = State.UP_FOR_RETRY
            delay = _retry_delay(key, tries, ti.max_tries)
            values["next_try_at"] = now + delay
        else:
            state = State.FAILED
        if not transition(session, ti, state, expect_state=expected_state, expect_try=expected_try,
                          end_date=now, note=reason[:1000], **values):
            # Another process (a scheduler's zombie check, the executor that saw its worker die)
            # handled this try first: it runs the callback, not us. The state is its to tell.
            return None, False
    return state, True


def _retry_delay(key: TaskKey, tries: int, max_tries: int) -> Any:
    from datetime import timedelta

    try:
        task = _task_for_key(key)
    except Exception:
        return timedelta(0)
    if task is None:
        return timedelta(0)
    return task.retry_delay_for(tries - (max_tries - task.retries))


def _task_for_key(key: TaskKey) -> Any:
    dag = _local_dags.get(key[0])
    if dag is None:
        from flux.db import session_scope
        from flux.models import DagModel

        with session_scope() as session:
            model = session.get(DagModel, key[0])
            fileloc = model.fileloc if model is not None else None
        if not fileloc:
            return None
        from flux.dagbag import get_dag_from_file

        dag = get_dag_from_file(fileloc, key[0])
    return dag.get_task(key[1]) if dag is not None and dag.has_task(key[1]) else None


def _run_lost_callbacks(key: TaskKey, state: str, reason: str) -> None:
    """The failure/retry callback of a try whose worker died (it could not run them itself)."""
    import logging

    from flux.state import State

    try:
        task = _task_for_key(key)
    except Exception:
        return
    if task is None:
        return
    callback = task.on_failure_callback if state == State.FAILED else task.on_retry_callback
    if callback is None:
        return
    context = {"dag": task.dag, "task": task, "execution_date": key[2], "reason": reason,
               "exception": None}
    try:
        callback(context)
    except Exception:
        logging.getLogger(__name__).exception("callback of %s failed", key)


def events_for(requests: Iterable[TaskRequest], state: str, message: str) -> list[TaskEvent]:
    """Events for requests that all ended the same way."""
    return [TaskEvent(r.key, state, r.try_number, message) for r in requests]
