"""The scheduler (``flux scheduler``, alias ``flux master``): the long-running loop.

Each pass: pick up new, changed and deleted DAG files; create the runs whose schedule interval
has passed; start manually triggered runs; queue the task instances that are ready; settle runs
whose instances all ended; and fail or retry instances whose process died (zombies). A pass reads
only *active* runs and their instances (by index on state), so it costs the same with a million
finished instances in the database as with none.

Several schedulers may run at once on MariaDB 10.6+, MySQL 8.0.1+ or PostgreSQL 9.5+. They share
the work through row locks taken with ``SELECT ... FOR UPDATE SKIP LOCKED``: a pass creates and
starts runs only of the DAG rows it locked, and queues task instances only of the running
``dag_run`` rows it locked, so two passes never work on the same run. Pool slots are counted and
taken under a (waiting) lock on the pool's row, so two schedulers never overfill a pool. Their
sessions read at READ COMMITTED, so what one committed is what the other sees next. Where rows
cannot be locked that way (SQLite, older servers), a second scheduler refuses to start.
"""

from __future__ import annotations

import copy
import logging
import os
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from flux.dag import DAG
from flux.dagbag import DagBag
from flux.dates import as_utc, utcnow
from flux.deps import RUN, WAIT, trigger_rule_outcome
from flux.exceptions import FluxError, SchedulerError
from flux.executors.base import BaseExecutor, TaskEvent, TaskKey, TaskRequest, handle_lost_try
from flux.state import DagRunState, State

log = logging.getLogger(__name__)

RUNNABLE = frozenset({None, State.SCHEDULED, State.UP_FOR_RETRY, State.UP_FOR_RESCHEDULE})


def skip_locked_supported(dialect: str, version: tuple[Any, ...] | None, is_mariadb: bool) -> bool:
    """Whether a database server runs ``SELECT ... FOR UPDATE SKIP LOCKED``.

    PostgreSQL 9.5+, MySQL 8.0.1+, MariaDB 10.6+ do; SQLite has no row locks at all.
    """
    if dialect == "postgresql":
        return version is None or tuple(version[:2]) >= (9, 5)
    if dialect in ("mysql", "mariadb"):
        if not version:
            return False
        numbers = tuple(v for v in version if isinstance(v, int))
        return numbers[:2] >= (10, 6) if is_mariadb else numbers[:3] >= (8, 0, 1)
    return False


def database_locks_rows(url: str | None = None) -> bool:
    """Whether the metadata database can coordinate several schedulers (SKIP LOCKED row locks)."""
    from flux.db import get_engine

    engine = get_engine(url)
    dialect = engine.dialect
    if dialect.name == "sqlite":
        return False
    if dialect.server_version_info is None:  # the dialect learns the version on first connect
        with engine.connect():
            pass
    return skip_locked_supported(dialect.name, dialect.server_version_info,
                                 bool(getattr(dialect, "is_mariadb", False)))


def describe_server(url: str | None = None) -> str:
    """``"MariaDB 10.5.3"``, ``"SQLite"``... for messages."""
    from flux.db import get_engine

    dialect = get_engine(url).dialect
    if dialect.name == "sqlite":
        return "SQLite"
    name = "MariaDB" if getattr(dialect, "is_mariadb", False) else {
        "mysql": "MySQL", "postgresql": "PostgreSQL"}.get(dialect.name, dialect.name)
    version = ".".join(str(v) for v in (dialect.server_version_info or ()) if isinstance(v, int))
    return f"{name} {version}".strip()


class DagFolder:
    """The DAG folder (or file), re-imported file by file when files change.

    One dag_id defined in two files: the file that provides it keeps it, and the other file gets a
    ``DuplicateDagIdError`` import error (a copy added later never takes over a running DAG). When
    neither provided it yet (both new, or at start-up), the first file in path order keeps it. A
    file that only imports another file's DAG never takes it over and is no duplicate.
    """

    def __init__(self, path: str | None) -> None:
        from flux.config import get_config

        self.path = os.path.abspath(os.path.expanduser(path or str(get_config().dags_folder)))
        if not os.path.exists(self.path):
            raise SchedulerError(f"DAG folder {self.path} does not exist")
        self.stats: dict[str, tuple[int, int]] = {}
        #: each file's own import, as it loaded (never changed by what other files define)
        self.bags: dict[str, DagBag] = {}
        self.dags: dict[str, DAG] = {}
        #: as recorded in the database: the dag_ids each file provides, and its duplicate error
        self.provides: dict[str, tuple[frozenset[str], str | None]] = {}

    def _files(self) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        paths = [self.path] if os.path.isfile(self.path) else []
        if not paths:
            for root, dirs, files in os.walk(self.path, followlinks=True):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
                paths.extend(os.path.join(root, n) for n in sorted(files)
                             if n.endswith(".py") and not n.startswith("."))
        for path in paths:
            try:
                stat = os.stat(path)
            except OSError:
                continue
            found[path] = (stat.st_mtime_ns, stat.st_size)
        return found

    def refresh(self) -> bool:
        """Re-import changed files, forget deleted ones, sync to the database. True if anything changed."""
        from sqlalchemy.exc import IntegrityError

        from flux.db import session_scope
        from flux.exceptions import DatabaseError
        from flux.models import DagModel, ImportErrorRecord

        current = self._files()
        changed = [p for p, st in current.items() if self.stats.get(p) != st]
        deleted = [p for p in self.stats if p not in current]
        if not changed and not deleted:
            return False
        for path in changed:
            self.bags[path] = DagBag(path)
        for path in deleted:
            self.bags.pop(path, None)
        self.dags, provides = self._providers()
        # A file that did not change still gains (or loses) a dag_id, or a duplicate error, when
        # another file defining the same dag_id appears or goes: it is synced again too.
        synced = changed + [p for p in sorted(self.bags) if p not in changed
                            and provides.get(p) != self.provides.get(p)]
        for attempt in range(3):
            try:
                with session_scope() as session:
                    # deleted files first: a dag_id they held may now be another file's
                    for path in deleted:
                        for row in session.execute(select(DagModel).where(
                                DagModel.fileloc == path)).scalars():
                            row.is_active = False
                        for row in session.execute(select(ImportErrorRecord).where(
                                ImportErrorRecord.filename == path)).scalars():
                            session.delete(row)
                    for path in synced:
                        self._as_synced(path, *provides[path]).sync_to_db(session)
                break
            except (IntegrityError, DatabaseError):
                # another scheduler synced the same new DAGs first (or the server broke a
                # deadlock between us): once more, now updating the rows it inserted
                if attempt == 2:
                    raise
                time.sleep(0.1 * (attempt + 1))
        # only now: a failed sync is tried again at the next refresh
        self.stats, self.provides = current, provides
        return True

    def _providers(self) -> tuple[dict[str, DAG], dict[str, tuple[frozenset[str], str | None]]]:
        """Each dag_id's DAG, from the file that keeps it; what each file provides, and its error."""
        previous = {dag_id: dag.fileloc for dag_id, dag in self.dags.items()}
        claims: dict[str, list[tuple[bool, bool, str]]] = defaultdict(list)
        for path, bag in self.bags.items():
            for dag_id in bag.dags:
                # the first claim keeps it: a file creating the DAG before one importing it, then
                # the file that provided it so far, then path order
                claims[dag_id].append((bag.is_borrowed(dag_id), previous.get(dag_id) != path, path))
        dags: dict[str, DAG] = {}
        owned: dict[str, set[str]] = defaultdict(set)
        errors: dict[str, str] = {}
        for dag_id in sorted(claims):
            (_, _, owner), *others = sorted(claims[dag_id])
            dags[dag_id] = self.bags[owner].dags[dag_id]
            owned[owner].add(dag_id)
            for borrowed, _, path in others:
                if not borrowed:
                    errors.setdefault(path, f"DuplicateDagIdError: DAG {dag_id!r} is defined in "
                                            f"{owner} and in {path}")
        return dags, {path: (frozenset(owned[path]), errors.get(path)) for path in self.bags}

    def _as_synced(self, path: str, dag_ids: frozenset[str], error: str | None) -> DagBag:
        """The bag of ``path`` as the database records it: only the dag_ids it provides, and its
        duplicate error."""
        bag = self.bags[path]
        if error is None and dag_ids == set(bag.dags):
            return bag
        view = copy.copy(bag)
        view.dags = {dag_id: bag.dags[dag_id] for dag_id in dag_ids}
        view.import_errors = {**bag.import_errors, path: error} if error else bag.import_errors
        return view


class Scheduler:
    """Creates runs, queues ready task instances and watches them until they end.

    :param subdir: DAG file or folder (default ``[core] dags_folder``).
    :param dag_id: only schedule this DAG.
    :param num_runs: stop after this many passes (tests; default: run until SIGTERM).
    """

    job_type = "scheduler"

    def __init__(self, subdir: str | None = None, dag_id: str | None = None,
                 executor: str | BaseExecutor | None = None, parallelism: int | None = None,
                 num_runs: int | None = None, loop_interval: float | None = None) -> None:
        from flux.config import get_config
        from flux.executors.factory import make_executor

        config = get_config()
        self.folder = DagFolder(subdir)
        self.only_dag_id = dag_id
        self.executor = make_executor(executor, parallelism)
        self.num_runs = num_runs
        self.loop_interval = float(loop_interval if loop_interval is not None
                                   else config.get("scheduler", "loop_interval", 1.0))
        self.heartbeat_seconds = float(config.get("scheduler", "heartbeat_seconds", 5.0))
        self.zombie_threshold = float(config.get("scheduler", "zombie_threshold_seconds", 60.0))
        self.list_interval = float(config.get("scheduler", "dag_dir_list_interval", 30.0))
        self.job_id: int | None = None
        self.stopping = False
        self.queued_keys: set[TaskKey] = set()
        #: whether passes lock the rows they work on (several schedulers may run); set by run()
        self.row_locks = False

    # --- lifecycle -------------------------------------------------------------------------------

    def run(self) -> None:
        """Run passes until SIGTERM/SIGINT (or ``num_runs`` passes)."""
        from flux import jobs

        self._refuse_unsafe_second()
        self.job_id = jobs.start_job(self.job_type, self.only_dag_id)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM,)}
        try:
            self.folder.refresh()
            self._adopt_or_reset()
            self.executor.start()
            self._loop()
        finally:
            log.info("Scheduler stopping: waiting for running task instances")
            try:
                self.executor.end() if not self.stopping else self._drain()
            finally:
                self._release_queued()
                jobs.end_job(self.job_id, "success")
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        log.info("Received %s: finishing the current pass", signal.Signals(signum).name)
        self.stopping = True

    def _drain(self, grace: float = 30.0) -> None:
        """After SIGTERM: let running tries finish for a while, then stop them."""
        deadline = time.monotonic() + grace
        self.executor.pending.clear()
        while self.executor.running and time.monotonic() < deadline:
            for event in self.executor.get_events(timeout=0.5):
                self._on_event(event)
        for event in self.executor.terminate() or []:
            self._on_event(event)

    def _refuse_unsafe_second(self) -> None:
        """Turn row locks on where the database has them; else refuse to be a second scheduler."""
        from flux.db import is_sqlite, session_scope
        from flux.models import Job

        self.row_locks = database_locks_rows()
        if self.row_locks:
            return
        with session_scope() as session:
            other = session.execute(select(Job).where(
                Job.job_type == self.job_type, Job.state == "running",
                Job.latest_heartbeat >= self._alive_cutoff())).scalars().first()
        if other is None:
            return
        if is_sqlite():
            raise SchedulerError(
                f"another scheduler is running (pid {other.pid} on {other.hostname}); SQLite cannot "
                "coordinate two schedulers: stop it, or use MySQL/MariaDB or PostgreSQL")
        raise SchedulerError(
            f"another scheduler is running (pid {other.pid} on {other.hostname}); this database "
            f"server ({describe_server()}) cannot lock rows with SKIP LOCKED, so two schedulers "
            "could queue a task instance twice: stop it, or use MariaDB 10.6+, MySQL 8.0.1+ or "
            "PostgreSQL 9.5+")

    def _alive_cutoff(self) -> datetime:
        """A job whose heartbeat is older than this is taken for dead."""
        return utcnow() - timedelta(seconds=max(self.heartbeat_seconds * 3, 15))

    @contextmanager
    def _session(self) -> Iterator[Any]:
        """A session for a pass: READ COMMITTED where rows are locked (see the module docstring)."""
        from flux.db import session_scope

        with session_scope() as session:
            if self.row_locks:
                session.connection(execution_options={"isolation_level": "READ COMMITTED"})
            yield session

    def _locked(self, stmt: Any) -> Any:
        """``stmt`` locking the rows it reads, skipping rows another scheduler holds."""
        return stmt.with_for_update(skip_locked=True) if self.row_locks else stmt

    def _adopt_or_reset(self) -> None:
        """Instances left queued by a dead scheduler are reset; running ones keep running if alive."""
        self._reset_orphans()
        self._find_zombies()

    def _reset_orphans(self) -> None:
        """Reset instances queued by a process that is gone (not those of a live scheduler/backfill)."""
        from flux.db import session_scope
        from flux.models import Job, TaskInstance
        from flux.transitions import transition

        with session_scope() as session:
            queued = session.execute(select(TaskInstance).where(
                TaskInstance.state == State.QUEUED)).scalars().all()
            if not queued:
                return
            alive = set(session.execute(select(Job.id).where(
                Job.state == "running", Job.latest_heartbeat >= self._alive_cutoff())).scalars())
            alive.add(self.job_id)
            for ti in queued:
                if ti.job_id is not None and ti.job_id in alive:
                    continue
                transition(session, ti, None, expect_state=State.QUEUED, expect_try=ti.try_number,
                           note="reset: queued by a scheduler that is gone")

    # --- the loop --------------------------------------------------------------------------------

    def _loop(self) -> None:
        from flux import jobs

        passes = 0
        last_list = last_beat = 0.0
        while not self.stopping:
            started = time.monotonic()
            if started - last_list >= self.list_interval:
                try:
                    self.folder.refresh()
                except (FluxError, SQLAlchemyError) as exc:
                    log.error("cannot read the DAG folder: %s", str(exc).splitlines()[0])
                last_list = started
            try:
                self._pass()
            except (FluxError, SQLAlchemyError) as exc:  # the database went away for a moment, or
                # a deadlock with another scheduler was broken by the server: try again
                log.error("scheduler pass failed: %s", str(exc).splitlines()[0])
                time.sleep(min(self.loop_interval, 5.0))
            if started - last_beat >= self.heartbeat_seconds:
                try:
                    jobs.heartbeat(self.job_id)  # type: ignore[arg-type]
                    self._find_zombies()
                    self._reset_orphans()
                except (FluxError, SQLAlchemyError) as exc:
                    log.error("heartbeat failed: %s", str(exc).splitlines()[0])
                last_beat = started
            passes += 1
            if self.num_runs is not None and passes >= self.num_runs:
                break
            remaining = self.loop_interval - (time.monotonic() - started)
            if self.executor.has_work:
                for event in self.executor.get_events(timeout=max(remaining, 0.0)):
                    self._on_event(event)
            elif remaining > 0 and not self.stopping:
                time.sleep(remaining)
        # last events of a bounded run
        for event in self.executor.get_events(timeout=0.0):
            self._on_event(event)

    def _dags(self) -> dict[str, DAG]:
        dags = self.folder.dags
        if self.only_dag_id is not None:
            return {k: v for k, v in dags.items() if k == self.only_dag_id}
        return dags

    def _pass(self) -> None:
        with self._session() as session:
            paused = self._paused(session)
            dags = {k: v for k, v in self._dags().items() if k not in paused}
            mine = self._claim_dags(session, dags)
            self._create_runs(session, mine)
            self._start_queued_runs(session, mine)
        self._schedule_instances(dags)

    def _claim_dags(self, session: Any, dags: dict[str, DAG]) -> dict[str, DAG]:
        """The DAGs whose rows this pass locked (another scheduler works on the others now)."""
        from flux.models import DagModel

        if not self.row_locks or not dags:
            return dags
        locked = set(session.execute(self._locked(select(DagModel.dag_id).where(
            DagModel.dag_id.in_(list(dags))))).scalars())
        return {k: v for k, v in dags.items() if k in locked}

    def _paused(self, session: Any) -> set[str]:
        from flux.models import DagModel

        return set(session.execute(select(DagModel.dag_id).where(DagModel.is_paused.is_(True))).scalars())

    # --- runs ------------------------------------------------------------------------------------

    def _create_runs(self, session: Any, dags: dict[str, DAG]) -> None:
        """Create the scheduled runs whose interval has passed (all of them, or the last if no catchup)."""
        from flux.models import DagModel, DagRun

        now = utcnow()
        models = {m.dag_id: m for m in session.execute(
            select(DagModel).where(DagModel.dag_id.in_(list(dags)))).scalars()}
        active = dict(session.execute(
            select(DagRun.dag_id, func.count()).where(
                DagRun.dag_id.in_(list(dags)),
                DagRun.state.in_([DagRunState.RUNNING, DagRunState.QUEUED]))
            .group_by(DagRun.dag_id)).all())
        for dag_id, dag in dags.items():
            model = models.get(dag_id)
            if model is None or not dag.schedule.automatic or dag.start_date is None:
                continue
            nxt = model.next_dagrun
            if nxt is None:
                last = session.execute(select(func.max(DagRun.execution_date)).where(
                    DagRun.dag_id == dag_id, DagRun.run_type == "scheduled")).scalar()
                nxt = dag.following_date(as_utc(last)) if last is not None \
                    else dag.schedule.align(dag.start_date)
            if nxt is not None and not dag.catchup:
                nxt = self._latest_due(dag, nxt, now)
            count = active.get(dag_id, 0)
            while nxt is not None and count < dag.max_active_runs:
                closes = dag.following_date(nxt)
                if dag.end_date is not None and nxt > dag.end_date:
                    nxt = None
                    break
                if closes is None:  # @once: due at its start date
                    if nxt > now:
                        break
                elif closes > now:
                    break
                exists = session.execute(select(DagRun.id).where(
                    DagRun.dag_id == dag_id, DagRun.execution_date == nxt)).scalar()
                if exists is None:
                    session.add(DagRun(dag_id=dag_id, run_id=f"scheduled__{nxt.isoformat()}",
                                       execution_date=nxt, state=DagRunState.RUNNING,
                                       run_type="scheduled", start_date=now))
                    count += 1
                    log.info("Created run %s of %s", nxt.isoformat(), dag_id)
                nxt = closes
            model.next_dagrun = nxt

    @staticmethod
    def _latest_due(dag: DAG, nxt: datetime, now: datetime) -> datetime:
        """Without catchup: the newest date whose interval has ended (skip the missed ones)."""
        while True:
            following = dag.following_date(nxt)
            if following is None or following > now:
                return nxt  # nxt is not due yet (or is the only date)
            after = dag.following_date(following)
            if after is None or after > now:
                return nxt  # the next date is not due: nxt is the latest due one
            nxt = following

    def _start_queued_runs(self, session: Any, dags: dict[str, DAG]) -> None:
        """Manually triggered (or cleared) runs waiting to start, within max_active_runs."""
        from flux.models import DagRun

        if not dags:
            return
        queued = session.execute(select(DagRun).where(
            DagRun.state == DagRunState.QUEUED, DagRun.dag_id.in_(list(dags)))
            .order_by(DagRun.execution_date)).scalars().all()
        if not queued:
            return
        running = defaultdict(int, session.execute(
            select(DagRun.dag_id, func.count()).where(DagRun.state == DagRunState.RUNNING)
            .group_by(DagRun.dag_id)).all())
        now = utcnow()
        for run in queued:
            dag = dags.get(run.dag_id)
            if dag is None or running[run.dag_id] >= dag.max_active_runs:
                continue
            run.state, run.start_date = DagRunState.RUNNING, run.start_date or now
            running[run.dag_id] += 1

    # --- task instances --------------------------------------------------------------------------

    def _schedule_instances(self, dags: dict[str, DAG]) -> None:
        from flux.models import DagRun
        from flux.transitions import transition

        now = utcnow()
        to_queue: list[tuple[TaskKey, Any]] = []
        if not dags:
            return
        with self._session() as session:
            # the runs another scheduler works on now are skipped, not waited for
            runs = session.execute(self._locked(select(DagRun).where(
                DagRun.state == DagRunState.RUNNING, DagRun.dag_id.in_(list(dags))))).scalars().all()
            if not runs:
                return
            by_dag: dict[str, list[DagRun]] = defaultdict(list)
            run_of: dict[tuple[str, datetime], DagRun] = {}
            for run in runs:
                by_dag[run.dag_id].append(run)
                run_of[(run.dag_id, run.execution_date)] = run
            tis = self._instances_of(session, run_of)
            for dag_id, dag_runs in by_dag.items():
                dag = dags[dag_id]
                for run in dag_runs:
                    states = self._ensure_instances(session, dag, run, tis)
                    if self._close_run(run, dag, states, now):
                        continue
                    for task in dag.topological_sort():
                        key = (dag_id, task.task_id, run.execution_date)
                        ti = tis.get(key)
                        if ti is None or ti.state not in RUNNABLE or key in self.queued_keys:
                            continue
                        if ti.state in (State.UP_FOR_RETRY, State.UP_FOR_RESCHEDULE) and \
                                ti.next_try_at is not None and ti.next_try_at > now:
                            continue
                        if task.depends_on_past and not self._past_done(session, dag, task, key):
                            continue
                        outcome = trigger_rule_outcome(task.trigger_rule, [
                            states.get(up) for up in task.upstream_task_ids])
                        if outcome == RUN:
                            to_queue.append((key, ti))
                        elif outcome != WAIT:
                            loaded = self._loaded(session, ti)
                            if loaded is not None:
                                transition(session, loaded, outcome, expect_state=ti.state,
                                           expect_try=ti.try_number, end_date=now)
                            states[task.task_id] = outcome
            to_queue.sort(key=lambda item: (-item[1].priority_weight, item[0][2]))
            chosen = self._within_limits(session, to_queue, dags)
            queued = []
            for key, seen in chosen:
                ti = self._loaded(session, seen)
                if ti is not None and transition(
                        session, ti, State.QUEUED, expect_state=seen.state,
                        expect_try=seen.try_number, queued_at=now, job_id=self.job_id):
                    run = run_of[(key[0], key[2])]
                    queued.append((key, ti.try_number, dags[key[0]], run.run_id, run.conf))
        for key, tries, dag, run_id, conf in queued:
            self.queued_keys.add(key)
            self.executor.queue_task(self._request(key, tries, dag, run_id, conf))

    @staticmethod
    def _instances_of(session: Any, run_of: dict[tuple[str, datetime], Any]) -> dict[TaskKey, Any]:
        """The instances of the runs in ``run_of``, in one query of the columns a pass decides on.

        Whole ORM objects (two dozen columns, rendered fields and notes among them) are loaded
        only for the few instances a pass changes (see :meth:`_loaded`): loading every instance
        of every running run, DAG by DAG, made a pass over 200 runs of 20 tasks cost a fifth of a
        second on MariaDB, and a pass queues no more than the executor's free slots.
        """
        from flux.models import DagRun, TaskInstance

        rows = session.execute(
            select(TaskInstance.dag_id, TaskInstance.task_id, TaskInstance.execution_date,
                   TaskInstance.state, TaskInstance.try_number, TaskInstance.next_try_at,
                   TaskInstance.priority_weight)
            .join(DagRun, (DagRun.dag_id == TaskInstance.dag_id)
                  & (DagRun.execution_date == TaskInstance.execution_date))
            .where(DagRun.state == DagRunState.RUNNING,
                   DagRun.dag_id.in_(sorted({dag_id for dag_id, _ in run_of}))))
        # a run locked by another scheduler is running too: its instances are not this pass's
        return {(r.dag_id, r.task_id, r.execution_date): r for r in rows
                if (r.dag_id, r.execution_date) in run_of}

    @staticmethod
    def _loaded(session: Any, ti: Any) -> Any:
        """The ORM object of an instance :meth:`_instances_of` read (None if it is gone)."""
        from flux.models import TaskInstance

        if isinstance(ti, TaskInstance):  # created by this pass
            return ti
        return session.get(TaskInstance, (ti.dag_id, ti.task_id, ti.execution_date))

    def _ensure_instances(self, session: Any, dag: DAG, run: Any,
                          tis: dict[TaskKey, Any]) -> dict[str, str | None]:
        from flux.models import TaskInstance

        states: dict[str, str | None] = {}
        for task in dag.tasks:
            key = (dag.dag_id, task.task_id, run.execution_date)
            ti = tis.get(key)
            if ti is None:
                if (task.start_date is not None and run.execution_date < task.start_date) or \
                        (task.end_date is not None and run.execution_date > task.end_date):
                    continue
                ti = TaskInstance(dag_id=dag.dag_id, task_id=task.task_id,
                                  execution_date=run.execution_date, state=None, try_number=0,
                                  max_tries=task.retries, operator=task.operator_name,
                                  pool=task.pool, pool_slots=task.pool_slots, queue=task.queue,
                                  priority_weight=task.priority_weight)
                session.add(ti)
                tis[key] = ti
            states[task.task_id] = ti.state
        session.flush()
        return states

    @staticmethod
    def _close_run(run: Any, dag: DAG, states: dict[str, str | None], now: datetime) -> bool:
        if states and all(s in State.FINISHED for s in states.values()):
            failed = any(s in (State.FAILED, State.UPSTREAM_FAILED) for s in states.values())
            run.state = DagRunState.FAILED if failed else DagRunState.SUCCESS
            run.end_date = now
            log.info("Run %s of %s is %s", run.execution_date.isoformat(), dag.dag_id, run.state)
            return True
        return False

    @staticmethod
    def _past_done(session: Any, dag: DAG, task: Any, key: TaskKey) -> bool:
        from flux.models import TaskInstance

        previous = dag.previous_date(key[2])
        if previous is None or (task.start_date is not None and previous < task.start_date):
            return True
        state = session.execute(select(TaskInstance.state).where(
            TaskInstance.dag_id == key[0], TaskInstance.task_id == key[1],
            TaskInstance.execution_date == previous)).scalar()
        return state in (State.SUCCESS, State.SKIPPED)

    def _within_limits(self, session: Any, ready: list[tuple[TaskKey, Any]],
                       dags: dict[str, DAG]) -> list[tuple[TaskKey, Any]]:
        """Cut to the executor's free slots (plus one waiting request per worker) and the pools'."""
        from flux.models import Pool, TaskInstance

        # As in a backfill, one request waits per worker: a worker that ends a try starts the next
        # at once instead of idling until the scheduler's pass is over and it collects the end.
        slots = 2 * self.executor.parallelism - len(self.executor.running) - len(self.executor.pending)
        if slots <= 0 or not ready:
            return []
        pools = {dags[k[0]].get_task(k[1]).pool for k, _ in ready} - {None}
        free: dict[str, int] = {}
        if pools:
            # Waiting (not skipping) on the pools' rows: the other scheduler's pass takes its slots
            # and commits first, then this one counts what is left.
            stmt = select(Pool.pool, Pool.slots).where(Pool.pool.in_(sorted(pools)))
            sizes = dict(session.execute(stmt.with_for_update() if self.row_locks else stmt).all())
            used = dict(session.execute(
                select(TaskInstance.pool, func.sum(TaskInstance.pool_slots))
                .where(TaskInstance.state.in_([State.QUEUED, State.RUNNING]),
                       TaskInstance.pool.in_(list(pools)))
                .group_by(TaskInstance.pool)).all())
            for name in pools:
                if name not in sizes:
                    log.warning("pool %r does not exist: its tasks wait (flux pools set %s N)",
                                name, name)
                free[name] = int(sizes.get(name, 0)) - int(used.get(name) or 0)
        chosen = []
        for key, ti in ready:
            if len(chosen) >= slots:
                break
            task = dags[key[0]].get_task(key[1])
            if task.pool:
                if free.get(task.pool, 0) < task.pool_slots:
                    continue
                free[task.pool] -= task.pool_slots
            chosen.append((key, ti))
        return chosen

    def _request(self, key: TaskKey, tries: int, dag: DAG, run_id: str | None = None,
                 conf: str | None = None) -> TaskRequest:
        """The request for one try; it carries its run's id and conf (``dag_run_conf`` in templates)."""
        import json

        from flux.config import get_config

        task = dag.get_task(key[1])
        timeout = task.execution_timeout.total_seconds() if task.execution_timeout else None
        grace = float(get_config().get("core", "killed_task_grace_seconds", 5.0))
        return TaskRequest(dag_id=key[0], task_id=key[1], execution_date=key[2],
                           try_number=tries + 1, dag_file=dag.fileloc, pool=task.pool,
                           queue=task.queue, priority_weight=task.priority_weight,
                           job_id=self.job_id, run_id=run_id, conf=json.loads(conf) if conf else None,
                           hard_timeout=timeout + 2 * grace + 5 if timeout else None)

    def _on_event(self, event: TaskEvent) -> None:
        self.queued_keys.discard(event.key)

    def _release_queued(self) -> None:
        from flux.db import session_scope
        from flux.models import TaskInstance
        from flux.transitions import transition

        with session_scope() as session:
            for ti in session.execute(select(TaskInstance).where(
                    TaskInstance.state == State.QUEUED, TaskInstance.job_id == self.job_id)).scalars():
                transition(session, ti, None, expect_state=State.QUEUED, expect_try=ti.try_number)

    # --- zombies ---------------------------------------------------------------------------------

    def _find_zombies(self) -> None:
        """Running instances whose heartbeat stopped: fail or retry them."""
        from flux.db import session_scope, unreachable_within
        from flux.models import TaskInstance

        if unreachable_within(self.zombie_threshold):
            return  # no heartbeat could be written while the database was away: none is stale yet
        cutoff = utcnow() - timedelta(seconds=self.zombie_threshold)
        with session_scope() as session:
            zombies = session.execute(select(TaskInstance.dag_id, TaskInstance.task_id,
                                             TaskInstance.execution_date, TaskInstance.try_number)
                                      .where(TaskInstance.state == State.RUNNING,
                                             func.coalesce(TaskInstance.heartbeat,
                                                           TaskInstance.start_date) < cutoff)).all()
        for dag_id, task_id, when, tries in zombies:
            key = (dag_id, task_id, when)
            if key in self.executor.running:
                continue  # ours and its worker is alive: the executor watches it
            state = handle_lost_try(key, tries, f"zombie: no heartbeat for {self.zombie_threshold:g} s")
            log.warning("Zombie %s.%s %s -> %s", dag_id, task_id, when.isoformat(), state)
