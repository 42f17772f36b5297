"""The floor: what running a trivial task instance costs this machine without any orchestrator.

A task instance of the fan-out workload runs one ``bash -c true`` and changes its state three times
(queued, running, success). The floor does exactly that much work, with nothing around it:

- 1,000 ``subprocess.run(["bash", "-c", "true"])``, two at a time (two threads), and
- 3,000 single-row SQLite updates, each committed (WAL, ``synchronous=NORMAL`` as Flux uses),

and reports ``floor rate = 1000 / (seconds of both together)``: task instances per second that no
orchestrator could beat on this machine. A serial variant (one process at a time) is the floor of
the chain workload, where each task waits for the one before it::

    floor: 1000 x bash -c true (2 threads) 1.52 s + 3000 SQLite commits 0.21 s = 578 TI/s (median of 3)

Run it alone with ``python bench/floor.py`` (no Flux needed) or through ``bench/run_all.py``.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

UPDATES_PER_TASK = 3  # queued, running, success


@dataclass
class Floor:
    """One measurement: seconds for the processes and for the commits, for ``tasks`` tasks."""

    tasks: int
    threads: int
    process_seconds: float
    commit_seconds: float

    @property
    def seconds(self) -> float:
        return self.process_seconds + self.commit_seconds

    @property
    def rate(self) -> float:
        """Task instances per second."""
        return self.tasks / self.seconds

    @property
    def ms_per_task(self) -> float:
        return 1000 * self.seconds / self.tasks


def run_processes(count: int, threads: int) -> float:
    """Seconds to run ``bash -c true`` ``count`` times, ``threads`` at a time."""
    def one(_: int) -> None:
        subprocess.run(["bash", "-c", "true"], check=True)

    start = time.perf_counter()
    if threads == 1:
        for n in range(count):
            one(n)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, range(count)))
    return time.perf_counter() - start


def run_commits(count: int, rows: int) -> float:
    """Seconds for ``count`` single-row UPDATEs, each in its own committed transaction."""
    with tempfile.TemporaryDirectory(prefix="flux-bench-floor-") as folder:
        db = sqlite3.connect(str(Path(folder) / "floor.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE ti (id INTEGER PRIMARY KEY, state TEXT, updated REAL)")
        db.executemany("INSERT INTO ti (id, state) VALUES (?, NULL)", [(n,) for n in range(rows)])
        states = ("queued", "running", "success")
        start = time.perf_counter()
        for n in range(count):
            db.execute("BEGIN")
            db.execute("UPDATE ti SET state = ?, updated = ? WHERE id = ?",
                       (states[n % 3], time.time(), (n // 3) % rows))
            db.execute("COMMIT")
        seconds = time.perf_counter() - start
        db.close()
    return seconds


def measure(tasks: int = 1000, threads: int = 2) -> Floor:
    """One floor measurement for ``tasks`` task instances run ``threads`` at a time."""
    return Floor(tasks, threads, run_processes(tasks, threads),
                 run_commits(tasks * UPDATES_PER_TASK, tasks))


def median_floor(runs: int = 3, tasks: int = 1000, threads: int = 2) -> Floor:
    """The run with the median total time out of ``runs``."""
    floors = sorted((measure(tasks, threads) for _ in range(runs)), key=lambda f: f.seconds)
    return floors[len(floors) // 2]


def describe(floor: Floor, runs: int) -> str:
    label = "floor" if floor.threads > 1 else "floor (serial)"
    return (f"{label}: {floor.tasks} x bash -c true ({floor.threads} thread"
            f"{'s' if floor.threads > 1 else ''}) {floor.process_seconds:.2f} s + "
            f"{floor.tasks * UPDATES_PER_TASK} SQLite commits {floor.commit_seconds:.2f} s = "
            f"{floor.rate:.0f} TI/s, {floor.ms_per_task:.2f} ms/TI (median of {runs})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    print(describe(median_floor(args.runs, args.tasks, threads=2), args.runs))
    print(describe(median_floor(args.runs, max(args.tasks // 5, 1), threads=1), args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
