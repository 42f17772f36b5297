"""``LocalExecutor``: a pool of long-lived worker processes on this machine (the default).

Each worker is forked once and runs try after try, so a task costs no new Python interpreter and
a DAG file is imported once per worker (again only when it changes). Every worker has its own pair
of pipes, so the parent always knows which try each one runs: when a worker dies (SIGKILL, a
segfault, the OOM killer) its try is failed or set up for retry and a new worker takes its place.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, ClassVar

from flux.executors.base import (
    BaseExecutor,
    TaskEvent,
    TaskRequest,
    execute_request,
    handle_lost_try,
)

log = logging.getLogger(__name__)
_STOP = None


def _worker_main(conn: Connection) -> None:
    """A worker's loop: receive a request, run it, send the event back; stop on EOF or None."""
    # Ctrl-C reaches the whole process group; the parent decides what to stop, and tells us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # A worker's task output belongs in task log files, not on the parent's terminal.
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    # Set once here, so that each try's log capture finds the level it needs already set.
    from flux.tasklog import configured_level

    logging.getLogger("flux").setLevel(configured_level())
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            break
        if request is _STOP:
            break
        event = execute_request(request)
        try:
            conn.send(event)
        except (BrokenPipeError, OSError):
            break
    os._exit(0)  # skip atexit handlers inherited from the parent (they are the parent's)


@dataclass
class _Worker:
    process: Any
    conn: Connection
    current: TaskRequest | None = None
    started: float = 0.0


class LocalExecutor(BaseExecutor):
    """Runs tries in ``parallelism`` long-lived worker processes forked from this one."""

    executor_name: ClassVar[str] = "local"
    shares_memory: ClassVar[bool] = True

    def __init__(self, parallelism: int | None = None) -> None:
        super().__init__(parallelism)
        self.workers: list[_Worker] = []
        self._context = multiprocessing.get_context("fork")

    def start(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.workers = [self._spawn() for _ in range(self.parallelism)]

    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_worker_main, args=(child_conn,), daemon=True,
                                        name="flux-worker")
        process.start()
        child_conn.close()
        return _Worker(process, parent_conn)

    def _dispatch(self) -> None:
        idle = [w for w in self.workers if w.current is None]
        for worker, request in zip(idle, self.take_pending(len(idle)), strict=False):
            worker.current, worker.started = request, time.monotonic()
            worker.conn.send(request)

    def get_events(self, timeout: float = 0.0) -> list[TaskEvent]:
        if not self.workers:
            self.start()
        self._dispatch()
        busy = [w for w in self.workers if w.current is not None]
        if not busy:
            return []
        waitables: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        ready = set(wait(waitables, timeout=self._wait_timeout(busy, timeout)))
        events: list[TaskEvent] = []
        for worker in busy:
            event = None
            if worker.conn in ready:
                try:
                    event = worker.conn.recv()
                except (EOFError, OSError):
                    event = None
                if event is not None:
                    worker.current = None
                    events.append(self.finished(event))
                    continue
            if worker.process.sentinel in ready or (event is None and worker.conn in ready):
                events.append(self._replace_dead(worker))
            elif self._overdue(worker):
                log.warning("killing worker %s: %s exceeded its hard timeout", worker.process.pid,
                            worker.current.key if worker.current else "?")
                worker.process.kill()
        self._dispatch()
        return events

    def _wait_timeout(self, busy: list[_Worker], timeout: float) -> float:
        deadlines = [w.current.hard_timeout - (time.monotonic() - w.started)
                     for w in busy if w.current is not None and w.current.hard_timeout]
        return max(min([timeout, *deadlines]), 0.0)

    def _overdue(self, worker: _Worker) -> bool:
        request = worker.current
        return bool(request and request.hard_timeout
                    and time.monotonic() - worker.started > request.hard_timeout)

    def _replace_dead(self, worker: _Worker) -> TaskEvent:
        request = worker.current
        assert request is not None
        worker.process.join(timeout=5)
        reason = (f"worker process {worker.process.pid} died while running the task "
                  f"(exit code {worker.process.exitcode})")
        log.error("%s: %s", ".".join(map(str, request.key[:2])), reason)
        state = handle_lost_try(request.key, request.try_number, reason)
        worker.conn.close()
        self.workers[self.workers.index(worker)] = self._spawn()
        return self.finished(TaskEvent(request.key, state, request.try_number, message=reason))

    def end(self) -> None:
        while self.has_work:
            self.get_events(timeout=1.0)
        self._stop_workers()

    def terminate(self, grace: float = 10.0) -> list[TaskEvent]:
        """Stop running tries (SIGTERM: their workers mark them failed), then stop the workers."""
        self.pending.clear()
        events: list[TaskEvent] = []
        busy = [w for w in self.workers if w.current is not None]
        for worker in busy:
            if worker.process.is_alive():
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(w.current is not None for w in self.workers) and time.monotonic() < deadline:
            events.extend(self.get_events(timeout=0.2))
        for worker in self.workers:
            if worker.current is not None:
                worker.process.kill()
                events.append(self._replace_dead(worker))
        self._stop_workers()
        return events

    def _stop_workers(self) -> None:
        for worker in self.workers:
            try:
                worker.conn.send(_STOP)
            except (BrokenPipeError, OSError):
                pass
        for worker in self.workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)
            worker.conn.close()
        self.workers = []
