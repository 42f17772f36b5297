"""One writer at a time on a SQLite metadata database, queued by the kernel instead of polling.

SQLite lets one connection write at a time. A writer that finds the database locked sleeps in
SQLite's busy handler: 1 ms, then 2, 5, 10 ms and more. A backfill's processes each commit a few
times per task instance, every commit taking a fraction of a millisecond, so they kept finding
each other's locks and sleeping far longer than the writes took (hundreds of such sleeps for
1,000 task instances). Flux's short write transactions (:func:`flux.db.transaction`) now first take an
advisory ``flock`` on a file beside the database; the kernel hands it to the next waiter the moment
it is released. Other programs that open the database are unaffected: SQLite's own locking still
protects it, this only keeps Flux's writers from colliding.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: the lock file's name is the database file's name plus this
SUFFIX = "-writers"


class _ProcessLock:
    """This process's hold on one database's writer lock: re-entrant, shared by its threads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        self.depth = 0
        self.mutex = threading.RLock()

    def acquire(self) -> None:
        self.mutex.acquire()
        try:
            if self.depth == 0:
                if self.fd is None:
                    self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            self.depth += 1
        except BaseException:
            self.mutex.release()
            raise

    def release(self) -> None:
        try:
            self.depth -= 1
            if self.depth == 0 and self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.mutex.release()


_locks: dict[str, _ProcessLock] = {}
_guard = threading.Lock()


@contextmanager
def exclusive(database_file: str) -> Iterator[None]:
    """Hold the writer lock of the SQLite database ``database_file`` while the block runs."""
    lock = _locks.get(database_file)
    if lock is None:
        with _guard:
            lock = _locks.setdefault(database_file, _ProcessLock(database_file + SUFFIX))
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _after_fork_in_child() -> None:
    # A forked child shares its parent's open lock files, hence their flock: it must open its own.
    # Its copy of a mutex may also be held by a parent thread that does not exist here.
    global _guard
    for lock in _locks.values():
        if lock.fd is not None:
            os.close(lock.fd)
    _locks.clear()
    _guard = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
