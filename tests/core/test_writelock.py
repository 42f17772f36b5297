"""The SQLite writer lock: held by one process at a time, re-entrant within a process, and not
inherited by a forked child (a LocalExecutor worker must wait for its parent's write to end)."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

from flux import writelock

HOLD_SECONDS = 0.5


def _hold_then_release(path: str, acquired: multiprocessing.Event, seconds: float) -> None:
    with writelock.exclusive(path):
        acquired.set()
        time.sleep(seconds)


def test_a_second_process_waits_until_the_first_releases(tmp_path: Path) -> None:
    database = str(tmp_path / "flux.db")
    acquired = multiprocessing.get_context("fork").Event()
    holder = multiprocessing.get_context("fork").Process(
        target=_hold_then_release, args=(database, acquired, HOLD_SECONDS))
    holder.start()
    try:
        assert acquired.wait(10), "the holder never took the lock"
        began = time.monotonic()
        with writelock.exclusive(database):
            waited = time.monotonic() - began
    finally:
        holder.join(10)
    assert waited >= HOLD_SECONDS * 0.5, f"took the lock after {waited:.3f} s while another held it"
    assert Path(database + writelock.SUFFIX).exists()


def _take_and_report(path: str, conn: Any) -> None:
    began = time.monotonic()
    with writelock.exclusive(path):
        conn.send(time.monotonic() - began)
    os._exit(0)


def test_a_forked_child_does_not_inherit_the_hold(tmp_path: Path) -> None:
    database = str(tmp_path / "flux.db")
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    with writelock.exclusive(database):
        child = context.Process(target=_take_and_report, args=(database, sender))
        child.start()
        time.sleep(HOLD_SECONDS)
    assert receiver.poll(10), "the child never got the lock"
    waited = receiver.recv()
    child.join(10)
    assert waited >= HOLD_SECONDS * 0.5, f"the child wrote while its parent held the lock ({waited:.3f} s)"


def test_reentrant_in_one_thread_exclusive_between_threads(tmp_path: Path) -> None:
    database = str(tmp_path / "flux.db")
    order: list[str] = []

    def other() -> None:
        with writelock.exclusive(database):
            order.append("other")

    with writelock.exclusive(database):
        with writelock.exclusive(database):  # nested: no deadlock
            thread = threading.Thread(target=other)
            thread.start()
            time.sleep(0.2)
            order.append("main")
    thread.join(10)
    assert order == ["main", "other"]
