"""How long a ``DagBag`` takes to load a folder of DAG files.

Generates 100 DAG files of 50 ``EmptyOperator`` tasks each (half chained, half fanned out) in a
temporary folder, loads them three times and prints the median::

    parse: 100 files x 50 tasks in 0.123 s (median of 3)

Run it where flux-core is installed from this repository.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

TEMPLATE = '''\
from datetime import datetime

from flux import DAG
from flux.operators import EmptyOperator

with DAG("bench_{index}", start_date=datetime(2024, 1, 1), schedule_interval="@daily",
         default_args={{"owner": "bench", "retries": 1}}) as dag:
    tasks = [EmptyOperator(task_id=f"task_{{n}}") for n in range({tasks})]
    if {index} % 2:
        for upstream, downstream in zip(tasks, tasks[1:]):
            upstream >> downstream
    else:
        tasks[0] >> tasks[1:]
'''


def write_files(folder: Path, files: int, tasks: int) -> None:
    """Write ``files`` DAG files of ``tasks`` tasks each into ``folder``."""
    for index in range(files):
        (folder / f"bench_dag_{index:03d}.py").write_text(TEMPLATE.format(index=index, tasks=tasks))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="flux-bench-parse-") as home:
        os.environ["FLUX_HOME"] = home
        from flux.dagbag import DagBag

        folder = Path(home) / "dags"
        folder.mkdir()
        write_files(folder, args.files, args.tasks)
        times = []
        for _ in range(args.runs):
            bag = DagBag(folder)
            if bag.import_errors or len(bag.dags) != args.files:
                first = next(iter(bag.import_errors.values()), "no error recorded")
                print(f"parse: failed ({len(bag.dags)} DAGs loaded): {first}", file=sys.stderr)
                return 1
            times.append(bag.load_seconds)
        print(f"parse: {args.files} files x {args.tasks} tasks in {statistics.median(times):.3f} s "
              f"(median of {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
