"""Backfill: run a DAG (or some of its tasks) over a date range, as fast as dependencies allow.

The job holds every task instance's state in memory and recomputes readiness only for the
instances an event can affect (the downstream tasks of a finished one, and its next date), so the
cost per finished task does not grow with the size of the backfill. It blocks on the executor's
events instead of polling with a fixed sleep, so a dependent task starts as soon as its upstream
tasks end.
"""

from __future__ import annotations

import heapq
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from flux.dag import DAG
from flux.dates import as_utc, display, utcnow
from flux.db import with_reconnect
from flux.deps import RUN, WAIT, trigger_rule_outcome
from flux.exceptions import DagDefinitionError
from flux.executors.base import BaseExecutor, TaskEvent, TaskKey, TaskRequest, register_dag
from flux.state import DagRunState, State

log = logging.getLogger(__name__)

RUNNABLE = frozenset({None, State.SCHEDULED, State.UP_FOR_RETRY, State.UP_FOR_RESCHEDULE})
DONE = State.FINISHED


@dataclass
class BackfillResult:
    """The outcome: state counts of every task instance in the range, and what failed."""

    dag_id: str
    start: datetime
    end: datetime
    counts: dict[str, int]
    failed: list[TaskKey] = field(default_factory=list)
    ran: int = 0
    nothing_to_do: bool = False
    deadlocked: list[TaskKey] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return not self.failed and not self.deadlocked and not self.interrupted

    def __str__(self) -> str:
        from flux.progress import summary_table

        lines = [f"Run summary: {self.dag_id} from {display(self.start)} to {display(self.end)}",
                 summary_table(self.counts)]
        if self.failed:
            lines.append("Failed: " + ", ".join(f"{t} {display(d)}" for _, t, d in self.failed[:20])
                         + (" ..." if len(self.failed) > 20 else ""))
        if self.deadlocked:
            lines.append("Could not run (dependencies never met): " + ", ".join(
                f"{t} {display(d)}" for _, t, d in self.deadlocked[:20]))
        return "\n".join(lines)


class BackfillJob:
    """Run ``dag``'s tasks (those matching ``task_regex``) for every schedule date in a range.

    :param executor: an executor name (``"local"``...) or instance; default ``[core] executor``.
    :param mark_success: record success without running anything.
    :param reset_failed: clear failed and upstream_failed instances of the range first.
    :param dry_run: only report what would run.
    """

    def __init__(self, dag: DAG, start_date: datetime | None = None, end_date: datetime | None = None,
                 *, mark_success: bool = False, executor: str | BaseExecutor | None = None,
                 task_regex: str | None = None, parallelism: int | None = None,
                 reset_failed: bool = False, dry_run: bool = False, progress: bool = False,
                 include_upstream: bool = False) -> None:
        from flux.executors.factory import make_executor

        self.dag = dag
        self.start = as_utc(start_date) or dag.start_date
        if self.start is None:
            raise DagDefinitionError(f"DAG {dag.dag_id!r} has no start_date: give a start date")
        self.end = as_utc(end_date) or dag.end_date or utcnow()
        if self.end < self.start:
            raise DagDefinitionError(
                f"start date {display(self.start)} is after end date {display(self.end)}")
        if task_regex:
            self.tasks = dag.sub_dag(task_regex, include_upstream=include_upstream)
            if not self.tasks:
                raise DagDefinitionError(
                    f"task regex {task_regex!r} matches no task of DAG {dag.dag_id!r} "
                    f"(tasks: {', '.join(dag.task_ids[:20])})")
        else:
            self.tasks = dag.topological_sort()
        self.task_ids = {t.task_id for t in self.tasks}
        self.order = {t.task_id: i for i, t in enumerate(dag.topological_sort())}
        self.dates = dag.dates_between(self.start, self.end)
        self.mark_success = mark_success
        self.reset_failed = reset_failed
        self.dry_run = dry_run
        self.show_progress = progress
        self.executor = make_executor(executor, parallelism)
        self.states: dict[TaskKey, str | None] = {}
        self.tries: dict[TaskKey, int] = {}
        self.next_try: dict[TaskKey, datetime] = {}
        self.job_id: int | None = None

    # --- set-up ----------------------------------------------------------------------------------

    def _wanted_keys(self) -> list[TaskKey]:
        keys = []
        for when in self.dates:
            for task in self.tasks:
                if task.start_date is not None and when < task.start_date:
                    continue
                if task.end_date is not None and when > task.end_date:
                    continue
                keys.append((self.dag.dag_id, task.task_id, when))
        return keys

    def _prepare(self, session: Any) -> list[TaskKey]:
        """Create missing runs and task instances; load every state of the range into memory."""
        from flux.models import DagRun, TaskInstance
        from flux.transitions import transition

        dag_id = self.dag.dag_id
        now = utcnow()
        existing_runs = set(session.execute(select(DagRun.execution_date).where(
            DagRun.dag_id == dag_id, DagRun.execution_date >= self.start,
            DagRun.execution_date <= self.end)).scalars())
        for when in self.dates:
            if when not in existing_runs:
                session.add(DagRun(dag_id=dag_id, run_id=f"backfill__{when.isoformat()}",
                                   execution_date=when, state=DagRunState.RUNNING,
                                   run_type="backfill", start_date=now))
        rows = session.execute(select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.execution_date >= self.start,
            TaskInstance.execution_date <= self.end)).scalars().all()
        found = {ti.key: ti for ti in rows}
        wanted = self._wanted_keys()
        missing = [key for key in wanted if key not in found]
        if missing:
            # one executemany: thousands of new instances without the ORM's per-object work
            session.execute(insert(TaskInstance.__table__), [self._new_instance(key) for key in missing])
            for key in missing:
                self.states[key] = None
                self.tries[key] = 0
        for key, ti in found.items():
            if self.reset_failed and key[1] in self.task_ids and \
                    ti.state in (State.FAILED, State.UPSTREAM_FAILED):
                transition(session, ti, None, expect_state=ti.state, expect_try=ti.try_number,
                           max_tries=ti.try_number + self.dag.get_task(key[1]).retries
                           if self.dag.has_task(key[1]) else ti.max_tries, next_try_at=None)
            if ti.state == State.QUEUED and key[1] in self.task_ids:
                # queued by a process that is gone (we hold no executor state from before)
                transition(session, ti, None, expect_state=State.QUEUED, expect_try=ti.try_number)
            self.states[key] = ti.state
            self.tries[key] = ti.try_number
            if ti.next_try_at is not None:
                self.next_try[key] = ti.next_try_at
        return wanted

    def _new_instance(self, key: TaskKey) -> dict[str, Any]:
        """The row of a task instance that does not exist yet."""
        task = self.dag.get_task(key[1])
        return dict(dag_id=key[0], task_id=key[1], execution_date=key[2], state=None,
                    try_number=0, max_tries=task.retries, operator=task.operator_name,
                    pool=task.pool, pool_slots=task.pool_slots, queue=task.queue,
                    priority_weight=task.priority_weight)

    def _recover_lost_tries(self) -> None:
        """Record as lost the tries of the range left ``running`` by a process that is gone.

        Their heartbeat is older than ``[scheduler] zombie_threshold_seconds``: an earlier backfill
        died, or gave up while the database was unreachable. As the scheduler does with zombies,
        each goes up for retry (or fails) and its callback runs, so this run can go on.
        """
        from datetime import timedelta

        from flux.config import get_config
        from flux.db import session_scope
        from flux.executors.base import handle_lost_try
        from flux.models import TaskInstance

        threshold = float(get_config().get("scheduler", "zombie_threshold_seconds", 60.0))
        with session_scope() as session:
            lost = session.execute(select(TaskInstance.task_id, TaskInstance.execution_date,
                                          TaskInstance.try_number).where(
                TaskInstance.dag_id == self.dag.dag_id, TaskInstance.state == State.RUNNING,
                TaskInstance.execution_date >= self.start, TaskInstance.execution_date <= self.end,
                func.coalesce(TaskInstance.heartbeat, TaskInstance.start_date)
                < utcnow() - timedelta(seconds=threshold))).all()
        if lost:
            register_dag(self.dag)  # where handle_lost_try finds the tasks' callbacks
        for task_id, when, tries in lost:
            if task_id in self.task_ids:
                state = handle_lost_try((self.dag.dag_id, task_id, when), tries,
                                        f"zombie: no heartbeat for {threshold:g} s")
                log.warning("Lost try %d of %s %s (left running by a process that is gone) -> %s",
                            tries, task_id, display(when), state)

    def _check_pools(self, session: Any) -> dict[str, int]:
        from flux.models import Pool

        names = {t.pool for t in self.tasks if t.pool}
        if not names:
            return {}
        slots = dict(session.execute(select(Pool.pool, Pool.slots).where(Pool.pool.in_(names))).all())
        missing = sorted(names - set(slots))
        if missing:
            raise DagDefinitionError(
                f"pool {missing[0]!r} used by DAG {self.dag.dag_id!r} does not exist; "
                f"create it with: flux pools set {missing[0]} SLOTS")
        return slots

    # --- the loop --------------------------------------------------------------------------------

    def run(self) -> BackfillResult:
        from flux import jobs
        from flux.db import session_scope
        from flux.progress import Progress

        started = utcnow()
        if not self.dry_run:
            self._recover_lost_tries()
        with session_scope() as session:
            wanted = self._prepare(session) if not self.dry_run else self._peek(session)
            self.pool_slots = self._check_pools(session)
        mine = [k for k in wanted if self.states.get(k) not in DONE]
        if self.dry_run:
            for key in mine:
                print(" ".join(self._request(key).command()))
            return self._result(wanted, started)
        if not mine:
            result = self._result(wanted, started)
            result.nothing_to_do = True
            log.info("Nothing to do: every task instance of %s from %s to %s is already done",
                     self.dag.dag_id, display(self.start), display(self.end))
            return result
        self.progress = Progress(len(wanted), f"backfill {self.dag.dag_id}", enabled=self.show_progress)
        self.job_id = jobs.start_job("backfill", self.dag.dag_id)
        if self.executor.shares_memory:
            register_dag(self.dag)
        self.executor.start()
        interrupted = False
        try:
            self._loop(wanted)
        except KeyboardInterrupt:
            interrupted = True
            log.warning("Interrupted: stopping running tasks")
            for event in self.executor.terminate() or []:
                self._on_event(event)
        except BaseException:
            for event in self.executor.terminate() or []:
                self._on_event(event)
            raise
        else:
            self.executor.end()
        finally:
            self._release_queued()
            self._close_runs()
            self.progress.close()
            jobs.end_job(self.job_id, "killed" if interrupted else "success")
        result = self._result(wanted, started)
        result.interrupted = interrupted
        if not self.show_progress:
            log.info("%s", result)
        return result

    def _peek(self, session: Any) -> list[TaskKey]:
        from flux.models import TaskInstance

        rows = session.execute(select(TaskInstance.dag_id, TaskInstance.task_id,
                                      TaskInstance.execution_date, TaskInstance.state).where(
            TaskInstance.dag_id == self.dag.dag_id, TaskInstance.execution_date >= self.start,
            TaskInstance.execution_date <= self.end)).all()
        for dag_id, task_id, when, state in rows:
            self.states[(dag_id, task_id, when)] = state
        return self._wanted_keys()

    def _loop(self, wanted: list[TaskKey]) -> None:
        from flux import jobs
        from flux.config import get_config

        heartbeat_every = float(get_config().get("scheduler", "heartbeat_seconds", 5.0))
        self.unfinished_by_date: dict[datetime, int] = defaultdict(int)
        self.done_count = sum(1 for k in wanted if self.states.get(k) in DONE)
        for key in wanted:
            if self.states.get(key) not in DONE:
                self.unfinished_by_date[key[2]] += 1
        self.candidates: set[TaskKey] = set()
        self.parked: dict[datetime, set[TaskKey]] = defaultdict(set)
        for key in wanted:
            if self.states.get(key) not in DONE:
                self.parked[key[2]].add(key)
        self.active: set[datetime] = set()
        self._activate_dates()
        self.ready: list[tuple[tuple[int, datetime, int], TaskKey]] = []
        self.in_ready: set[TaskKey] = set()
        self.retry_heap: list[tuple[datetime, TaskKey]] = []
        self.wanted = set(wanted)
        last_beat = utcnow()
        while True:
            now = utcnow()
            self._schedule(now)
            self.progress.update(self.done_count, self._counts)
            if not self.executor.has_work and not self.ready:
                if self.candidates:
                    continue  # settling one level (upstream_failed, skipped) opened the next
                if self.retry_heap:
                    wait = (self.retry_heap[0][0] - now).total_seconds()
                    if wait > 0:
                        import time

                        time.sleep(min(wait, heartbeat_every))
                    continue
                # nothing of ours runs: whatever is running was started by another process
                external = [k for k in self.wanted if self.states.get(k) == State.RUNNING]
                if external:
                    self._refresh_external(external)
                    continue
                break
            timeout = heartbeat_every
            if self.retry_heap:
                timeout = min(timeout, max((self.retry_heap[0][0] - now).total_seconds(), 0.0))
            for event in self.executor.get_events(timeout=timeout):
                self._on_event(event)
            if (now - last_beat).total_seconds() >= heartbeat_every:
                jobs.heartbeat(self.job_id)  # type: ignore[arg-type]
                self.executor.heartbeat()
                last_beat = now
        self.progress.update(self.done_count, self._counts, force=True)

    @with_reconnect("reading task instances run by others")
    def _refresh_external(self, keys: list[TaskKey]) -> None:
        """Wait for instances another process is running, reading their state now and then (a
        try whose process is gone, its heartbeat stale, is recorded as lost meanwhile)."""
        import time

        from flux.db import session_scope
        from flux.models import TaskInstance

        time.sleep(1.0)
        self._recover_lost_tries()
        with session_scope() as session:
            for key in keys:
                ti = session.get(TaskInstance, key)
                if ti is not None and ti.state != State.RUNNING:
                    self._set_state(key, ti.state)

    def _set_state(self, key: TaskKey, state: str | None) -> None:
        previous = self.states.get(key)
        self.states[key] = state
        if key not in self.wanted:
            return
        if previous not in DONE and state in DONE:
            self.done_count += 1
            self.unfinished_by_date[key[2]] -= 1
            if self.unfinished_by_date[key[2]] == 0:
                self._activate_dates()
        task = self.dag.get_task(key[1])
        for down in task.downstream_task_ids:
            down_key = (key[0], down, key[2])
            if down_key in self.wanted:
                self._consider(down_key)
        following = self.dag.following_date(key[2])
        if following is not None and (key[0], key[1], following) in self.wanted:
            self._consider((key[0], key[1], following))
        if state in RUNNABLE:
            self._consider(key)

    def _consider(self, key: TaskKey) -> None:
        """Look at ``key`` again at the next scheduling pass (or once its date becomes active)."""
        if key[2] in self.active:
            self.candidates.add(key)
        else:
            self.parked[key[2]].add(key)

    @with_reconnect("reading the state of a finished try")
    def _on_event(self, event: TaskEvent) -> None:
        state = event.state
        if state is None:
            from flux.db import session_scope
            from flux.models import TaskInstance

            with session_scope() as session:
                ti = session.get(TaskInstance, event.key)
                state = ti.state if ti is not None else None
        self.tries[event.key] = event.try_number
        if state in (State.UP_FOR_RETRY, State.UP_FOR_RESCHEDULE):
            from flux.db import session_scope
            from flux.models import TaskInstance

            with session_scope() as session:
                ti = session.get(TaskInstance, event.key)
                if ti is not None and ti.next_try_at is not None:
                    self.next_try[event.key] = ti.next_try_at
        self._set_state(event.key, state)

    def _activate_dates(self) -> None:
        """Keep the first ``max_active_runs`` dates with unfinished work active (older first)."""
        active = [d for d in self.dates if self.unfinished_by_date.get(d, 0) > 0]
        self.active = set(active[: self.dag.max_active_runs])
        for when in self.active:
            self.candidates.update(self.parked.pop(when, ()))

    def _schedule(self, now: datetime) -> None:
        """Decide every candidate: queue what may run, settle what never will, park the rest."""
        while self.retry_heap and self.retry_heap[0][0] <= now:
            _, key = heapq.heappop(self.retry_heap)
            self.candidates.add(key)
        ready_now: list[TaskKey] = []
        settle: list[tuple[TaskKey, str]] = []
        for key in self.candidates:
            state = self.states.get(key)
            if state not in RUNNABLE:
                continue
            task = self.dag.get_task(key[1])
            if state in (State.UP_FOR_RETRY, State.UP_FOR_RESCHEDULE):
                due = self.next_try.get(key)
                if due is not None and due > now:
                    heapq.heappush(self.retry_heap, (due, key))
                    continue
            if task.depends_on_past and not self._past_done(task, key):
                continue
            outcome = trigger_rule_outcome(
                task.trigger_rule,
                [self.states.get((key[0], up, key[2])) for up in task.upstream_task_ids])
            if outcome == RUN:
                ready_now.append(key)
            elif outcome != WAIT:
                settle.append((key, outcome))
        self.candidates = set()
        if settle:
            self._settle(settle)
        for key in ready_now:
            if key in self.in_ready:
                continue
            self.in_ready.add(key)
            task = self.dag.get_task(key[1])
            heapq.heappush(self.ready, ((-task.priority_weight, key[2], self.order[key[1]]), key))
        if self.ready:
            chosen = self._within_limits()
            if chosen:
                queued = self._queue_in_db(chosen)
                # dag.run() in a script narrates what it queues, as in the seed tutorial; the
                # command line shows a progress bar instead.
                narrate = not self.show_progress and log.isEnabledFor(logging.INFO)
                for key in queued:
                    request = self._request(key)
                    if narrate:
                        log.info("Adding to queue: %s", " ".join(request.command()))
                    self.executor.queue_task(request)

    def _within_limits(self) -> list[TaskKey]:
        """Take from the ready queue what fits the executor's and the pools' free slots."""
        # Keep one request waiting per worker: a worker that ends a try starts the next at once,
        # instead of idling while this process records the end and picks what follows.
        slots = 2 * self.executor.parallelism - len(self.executor.running) - len(self.executor.pending)
        chosen: list[TaskKey] = []
        held_back: list[tuple[tuple[int, datetime, int], TaskKey]] = []
        pool_free: dict[str, int] | None = None
        while self.ready and len(chosen) < slots:
            item = heapq.heappop(self.ready)
            key = item[1]
            self.in_ready.discard(key)
            if self.states.get(key) not in RUNNABLE:
                continue
            task = self.dag.get_task(key[1])
            if task.pool:
                if pool_free is None:
                    pool_free = self._pool_free()
                if pool_free.get(task.pool, 0) < task.pool_slots:
                    held_back.append(item)
                    continue
                pool_free[task.pool] -= task.pool_slots
            chosen.append(key)
        for item in held_back:
            self.in_ready.add(item[1])
            heapq.heappush(self.ready, item)
        return chosen

    @with_reconnect("counting pool slots")
    def _pool_free(self) -> dict[str, int]:
        from flux.db import session_scope
        from flux.models import TaskInstance

        with session_scope() as session:
            used = dict(session.execute(
                select(TaskInstance.pool, func.sum(TaskInstance.pool_slots))
                .where(TaskInstance.state.in_([State.QUEUED, State.RUNNING]),
                       TaskInstance.pool.in_(list(self.pool_slots)))
                .group_by(TaskInstance.pool)).all())
        return {name: slots - int(used.get(name) or 0) for name, slots in self.pool_slots.items()}

    @with_reconnect("reading the previous date's state")
    def _past_done(self, task: Any, key: TaskKey) -> bool:
        previous = self.dag.previous_date(key[2])
        if previous is None or (task.start_date is not None and previous < task.start_date):
            return True
        prev_key = (key[0], key[1], previous)
        if prev_key not in self.states:
            from flux.db import session_scope
            from flux.models import TaskInstance

            with session_scope() as session:
                ti = session.get(TaskInstance, prev_key)
                self.states[prev_key] = ti.state if ti is not None else None
        return self.states[prev_key] in (State.SUCCESS, State.SKIPPED)

    @with_reconnect("settling task instances that will not run")
    def _settle(self, settle: list[tuple[TaskKey, str]]) -> None:
        from flux.db import session_scope
        from flux.models import TaskInstance
        from flux.transitions import transition

        now = utcnow()
        with session_scope() as session:
            for key, state in settle:
                ti = session.get(TaskInstance, key)
                if ti is not None and transition(session, ti, state, expect_state=ti.state,
                                                 expect_try=ti.try_number, end_date=now):
                    pass
        for key, state in settle:
            self._set_state(key, state)

    @with_reconnect("queueing task instances")
    def _queue_in_db(self, keys: list[TaskKey]) -> list[TaskKey]:
        from flux.db import transaction

        with transaction() as conn:
            return self._mark_queued(conn, keys)

    def _mark_queued(self, conn: Any, keys: list[TaskKey]) -> list[TaskKey]:
        from flux.models import TaskInstance
        from flux.transitions import transition

        table = TaskInstance.__table__

        now = utcnow()
        queued = []
        for key in keys:
            # What this job holds in memory is what the row should say; the guarded update checks
            # it, so the row is read only when someone else changed it meanwhile.
            ti = TaskInstance(dag_id=key[0], task_id=key[1], execution_date=key[2],
                              state=self.states.get(key), try_number=self.tries.get(key, 0))
            if not transition(conn, ti, State.QUEUED, expect_state=ti.state,
                              expect_try=ti.try_number, queued_at=now, job_id=self.job_id):
                stored = conn.execute(select(table.c.state, table.c.try_number).where(
                    table.c.dag_id == key[0], table.c.task_id == key[1],
                    table.c.execution_date == key[2])).first()
                if stored is not None:
                    self.tries[key] = stored.try_number
                    self._set_state(key, stored.state)
                continue
            self.states[key] = State.QUEUED
            queued.append(key)
        return queued

    def _request(self, key: TaskKey) -> TaskRequest:
        task = self.dag.get_task(key[1])
        timeout = task.execution_timeout.total_seconds() if task.execution_timeout else None
        from flux.config import get_config

        grace = float(get_config().get("core", "killed_task_grace_seconds", 5.0))
        return TaskRequest(
            dag_id=key[0], task_id=key[1], execution_date=key[2],
            try_number=self.tries.get(key, 0) + 1,
            dag_file=self.dag.fileloc if not self.executor.shares_memory or self.dry_run else None,
            mark_success=self.mark_success, pool=task.pool, queue=task.queue,
            priority_weight=task.priority_weight, run_id=f"backfill__{key[2].isoformat()}",
            job_id=self.job_id, hard_timeout=timeout + 2 * grace + 5 if timeout else None)

    @with_reconnect("releasing queued task instances")
    def _release_queued(self) -> None:
        """Put instances this job queued but never started back to 'no state' (nothing left queued)."""
        from flux.db import session_scope
        from flux.models import TaskInstance
        from flux.transitions import transition

        stuck = [k for k, s in self.states.items() if s == State.QUEUED]
        if not stuck:
            return
        found: dict[TaskKey, str | None] = {}  # applied once committed: a retry sees the same stuck
        with session_scope() as session:
            for key in stuck:
                ti = session.get(TaskInstance, key)
                if ti is not None and ti.state == State.QUEUED:
                    transition(session, ti, None, expect_state=State.QUEUED, expect_try=ti.try_number)
                    found[key] = None
                elif ti is not None:
                    found[key] = ti.state
        self.states.update(found)

    @with_reconnect("closing the runs")
    def _close_runs(self) -> None:
        """Set each run's state from its task instances (success, failed, or still running)."""
        from flux.db import session_scope
        from flux.models import DagRun, TaskInstance

        now = utcnow()
        with session_scope() as session:
            states: dict[datetime, list[str | None]] = defaultdict(list)
            for when, state in session.execute(select(TaskInstance.execution_date, TaskInstance.state)
                                               .where(TaskInstance.dag_id == self.dag.dag_id,
                                                      TaskInstance.execution_date >= self.start,
                                                      TaskInstance.execution_date <= self.end)).all():
                states[when].append(state)
            for run in session.execute(select(DagRun).where(
                    DagRun.dag_id == self.dag.dag_id, DagRun.execution_date >= self.start,
                    DagRun.execution_date <= self.end)).scalars():
                run_states = states.get(run.execution_date, [])
                if run_states and all(s in DONE for s in run_states):
                    run.state = DagRunState.FAILED if any(
                        s in (State.FAILED, State.UPSTREAM_FAILED) for s in run_states) \
                        else DagRunState.SUCCESS
                    run.end_date = run.end_date or now
                elif run.state in DagRunState.FINISHED:
                    run.state, run.end_date = DagRunState.RUNNING, None

    # --- reporting -------------------------------------------------------------------------------

    def _counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for key in getattr(self, "wanted", ()):
            counts[self.states.get(key) or "none"] += 1
        return counts

    def _result(self, wanted: list[TaskKey], started: datetime) -> BackfillResult:
        counts: dict[str, int] = defaultdict(int)
        failed, blocked = [], []
        ran = 0
        for key in wanted:
            state = self.states.get(key)
            counts[state or "none"] += 1
            if state in (State.FAILED, State.UPSTREAM_FAILED):
                failed.append(key)
            elif state not in DONE:
                blocked.append(key)
            if self.tries.get(key):
                ran += 1
        return BackfillResult(self.dag.dag_id, self.start, self.end, dict(counts), failed, ran,
                              deadlocked=blocked if not self.dry_run else [],
                              seconds=(utcnow() - started).total_seconds())

