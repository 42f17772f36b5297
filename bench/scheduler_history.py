"""Does a scheduler pass get slower as history grows? (It must not.)

Measures the median time of a scheduler pass over 20 DAGs with active runs, first on a fresh
metadata database, then after adding one million finished task instances (and 50,000 finished
runs) to it. Prints both medians and their ratio.

    python bench/scheduler_history.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

DAG_TEMPLATE = """
from datetime import timedelta
from flux import DAG
from flux.operators import EmptyOperator
from flux.dates import utcnow

start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
with DAG("hist_{n}", start_date=start, schedule_interval="@hourly", max_active_runs=2) as dag:
    previous = None
    for i in range(10):
        task = EmptyOperator(task_id=f"t{{i}}")
        if previous is not None:
            previous >> task
        previous = task
"""


def median_pass(scheduler, passes: int = 15) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        scheduler._pass()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def add_history(database: Path, rows: int) -> None:
    """Insert finished runs and task instances of other DAGs straight through sqlite3 (fast)."""
    import sqlite3

    connection = sqlite3.connect(database)
    base = datetime(2000, 1, 1)
    per_run = 20
    runs = rows // per_run
    connection.executemany(
        "INSERT INTO dag_run (dag_id, run_id, execution_date, state, run_type, external_trigger)"
        " VALUES (?, ?, ?, 'success', 'scheduled', 0)",
        ((f"old_{r % 50}", f"scheduled__{r}", (base + timedelta(hours=r)).isoformat(" "))
         for r in range(runs)))
    connection.executemany(
        "INSERT INTO task_instance (dag_id, task_id, execution_date, state, try_number, max_tries,"
        " priority_weight, pool_slots) VALUES (?, ?, ?, 'success', 1, 0, 1, 1)",
        ((f"old_{r % 50}", f"t{t}", (base + timedelta(hours=r)).isoformat(" "))
         for r in range(runs) for t in range(per_run)))
    connection.commit()
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="flux-bench-history-"))
    os.environ["FLUX_HOME"] = str(home)
    os.environ.pop("FLUX_DATABASE_URL", None)
    dags = home / "dags"
    dags.mkdir()
    for n in range(20):
        (dags / f"hist_{n}.py").write_text(DAG_TEMPLATE.format(n=n))
    from flux.scheduler import Scheduler

    scheduler = Scheduler(subdir=str(dags), executor="sequential", num_runs=1)
    scheduler.folder.refresh()
    scheduler._pass()  # create the runs and instances once
    empty = median_pass(scheduler)
    started = time.perf_counter()
    add_history(home / "flux.db", args.rows)
    filled = median_pass(scheduler)
    print(f"scheduler pass: {empty * 1000:.1f} ms empty, {filled * 1000:.1f} ms with {args.rows:,} "
          f"finished task instances (ratio {filled / empty:.2f}; history added in "
          f"{time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
