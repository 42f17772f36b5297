"""Fan-out: how many trivial task instances a backfill runs per second.

One DAG of 100 independent tasks running ``true`` (``BashOperator(bash_command="true")``), daily,
backfilled for 10 dates: 1,000 task instances, LocalExecutor with parallelism 2, SQLite, a fresh
``FLUX_HOME`` for each repetition. Prints the median of 3 and the peak resident memory of the
backfill process and of its workers::

    fan-out: 1000 TIs (100 BashOperator x 10 dates, local, parallelism 2) in 4.12 s = 243 TI/s
    (median of 3, 4.01-4.40 s)

Each repetition runs in a new process (``--child``, what this file runs itself), so that nothing
imported or cached by one repetition helps the next. The time counted is the backfill's alone:
from ``BackfillJob.run()`` being called to its return (creating the runs and 1,000 task
instances, running them, stopping the workers); creating the empty database and importing the DAG
file come before. To profile one repetition::

    FLUX_HOME=$(mktemp -d) py-spy record -s -o fanout.svg -- python bench/fanout.py --child

If flux-bash is not installed, a tiny operator defined in the DAG file runs ``bash -c true`` with
``subprocess.run`` instead, and the output says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DAG_ID = "bench_fanout"

DAG_FILE = '''\
import subprocess
from datetime import datetime

from flux import DAG
from flux.baseoperator import BaseOperator

try:
    from flux.operators import BashOperator
except Exception:  # flux-bash is not installed
    BashOperator = None


class SubprocessOperator(BaseOperator):
    """Stand-in for BashOperator: run the command with bash, fail on a non-zero exit."""

    def __init__(self, bash_command, **kwargs):
        super().__init__(**kwargs)
        self.bash_command = bash_command

    def execute(self, context):
        subprocess.run(["bash", "-c", self.bash_command], check=True)


OPERATOR = BashOperator or SubprocessOperator

with DAG("{dag_id}", start_date=datetime(2024, 1, 1), schedule_interval="@daily") as dag:
    tasks = [OPERATOR(task_id=f"t{{n:03d}}", bash_command="true") for n in range({tasks})]
    if {chain}:
        for upstream, downstream in zip(tasks, tasks[1:]):
            upstream >> downstream
'''


@dataclass
class Repetition:
    """What one child process reports about its backfill."""

    seconds: float
    task_instances: int
    succeeded: bool
    operator: str
    backfill_peak_mb: float
    worker_peaks_mb: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.task_instances / self.seconds


def peak_rss_mb(pid: int | str = "self") -> float:
    """The peak resident set size (VmHWM) of a process, in MB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def child(tasks: int, dates: int, parallelism: int, chain: bool) -> dict[str, Any]:
    """Run one backfill in this process (FLUX_HOME must be a fresh folder); return its numbers."""
    from datetime import datetime, timedelta

    from flux.backfill import BackfillJob
    from flux.builtin.local_executor import LocalExecutor
    from flux.config import flux_home
    from flux.dagbag import get_dag_from_file
    from flux.db import get_engine

    class MeasuredLocalExecutor(LocalExecutor):
        """Notes each worker's peak memory before the workers are stopped."""

        worker_peaks: list[float] = []

        def end(self) -> None:
            while self.has_work:
                self.get_events(timeout=1.0)
            self.worker_peaks = [peak_rss_mb(w.process.pid) for w in self.workers]
            super().end()

    folder = Path(flux_home()) / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{DAG_ID}.py"
    path.write_text(DAG_FILE.format(dag_id=DAG_ID, tasks=tasks, chain=chain))
    get_engine()  # create the schema before the clock starts
    dag = get_dag_from_file(path, DAG_ID)
    operator = type(dag.tasks[0]).__name__
    start = datetime(2024, 1, 1)
    executor = MeasuredLocalExecutor(parallelism)
    job = BackfillJob(dag, start, start + timedelta(days=dates - 1), executor=executor)
    began = time.perf_counter()
    result = job.run()
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "task_instances": sum(result.counts.values()),
            "succeeded": result.succeeded, "operator": operator,
            "backfill_peak_mb": peak_rss_mb(), "worker_peaks_mb": executor.worker_peaks}


def run_once(tasks: int, dates: int, parallelism: int, chain: bool) -> Repetition:
    """One repetition in a new process with a fresh FLUX_HOME (SQLite)."""
    with tempfile.TemporaryDirectory(prefix="flux-bench-backfill-") as home:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("FLUX__") and k != "FLUX_DATABASE_URL"}
        env["FLUX_HOME"] = home
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--tasks", str(tasks),
                "--dates", str(dates), "--parallelism", str(parallelism)]
        if chain:
            argv.append("--chain")
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"backfill child failed (exit {done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        return Repetition(**json.loads(done.stdout.strip().splitlines()[-1]))


def measure(runs: int = 3, tasks: int = 100, dates: int = 10, parallelism: int = 2,
            chain: bool = False) -> list[Repetition]:
    """``runs`` repetitions of the workload, each checked to have succeeded."""
    repetitions = [run_once(tasks, dates, parallelism, chain) for _ in range(runs)]
    for rep in repetitions:
        if not rep.succeeded or rep.task_instances != tasks * dates:
            raise RuntimeError(f"the backfill did not run every task instance: {rep}")
    return repetitions


def median_rep(repetitions: list[Repetition]) -> Repetition:
    """The repetition of median time."""
    ordered = sorted(repetitions, key=lambda r: r.seconds)
    return ordered[len(ordered) // 2]


def spread(repetitions: list[Repetition]) -> str:
    """``median of 3, 2.31-2.90 s``: the spread shows how noisy the machine was."""
    times = [r.seconds for r in repetitions]
    return f"median of {len(times)}, {min(times):.2f}-{max(times):.2f} s"


def operator_note(operator: str) -> str:
    """What to add to a line when the workload could not use BashOperator."""
    if operator == "BashOperator":
        return ""
    return f" [{operator} is a stand-in: flux-bash is not installed]"


def describe(repetitions: list[Repetition], tasks: int, dates: int, parallelism: int) -> str:
    rep = median_rep(repetitions)
    return (f"fan-out: {rep.task_instances} TIs ({tasks} {rep.operator} x {dates} dates, local, "
            f"parallelism {parallelism}) in {rep.seconds:.2f} s = {rep.rate:.0f} TI/s "
            f"({spread(repetitions)}){operator_note(rep.operator)}")


def describe_memory(repetitions: list[Repetition], limit_mb: float = 150.0) -> str:
    backfill = max(r.backfill_peak_mb for r in repetitions)
    workers = max((mb for r in repetitions for mb in r.worker_peaks_mb), default=0.0)
    verdict = "ok" if backfill < limit_mb and workers < limit_mb else "OVER TARGET"
    return (f"memory (fan-out peak RSS): backfill process {backfill:.0f} MB, largest worker "
            f"{workers:.0f} MB (target < {limit_mb:.0f} MB each): {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--dates", type=int, default=10)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--chain", action="store_true", help="chain the tasks in a line")
    parser.add_argument("--child", action="store_true",
                        help="run one backfill in this process and print its numbers as JSON")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.tasks, args.dates, args.parallelism, args.chain)))
        return 0
    repetitions = measure(args.runs, args.tasks, args.dates, args.parallelism, args.chain)
    print(describe(repetitions, args.tasks, args.dates, args.parallelism))
    print(describe_memory(repetitions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
