"""Chain: how long a backfill takes per hop when every task waits for the one before it.

200 tasks in a line (each ``BashOperator(bash_command="true")``), one date, LocalExecutor with
parallelism 2, SQLite, a fresh ``FLUX_HOME`` per repetition. Reports milliseconds per hop
(the backfill's time / 200, median of 3): the latency from one task's end to the next one's end,
which a fan-out's throughput hides::

    chain: 200 hops (BashOperator, local, parallelism 2) in 1.65 s = 8.2 ms/hop (median of 3,
    1.60-1.71 s)

It reuses the machinery of ``fanout.py`` (a child process per repetition, the same DAG file).
"""

from __future__ import annotations

import argparse
import sys

from fanout import Repetition, measure, median_rep, operator_note, spread


def describe(repetitions: list[Repetition], tasks: int, parallelism: int) -> str:
    rep = median_rep(repetitions)
    return (f"chain: {tasks} hops ({rep.operator}, local, parallelism {parallelism}) in "
            f"{rep.seconds:.2f} s = {ms_per_hop(rep, tasks):.1f} ms/hop ({spread(repetitions)})"
            f"{operator_note(rep.operator)}")


def ms_per_hop(rep: Repetition, tasks: int) -> float:
    return 1000 * rep.seconds / tasks


def run(runs: int = 3, tasks: int = 200, parallelism: int = 2) -> list[Repetition]:
    """``runs`` repetitions of a ``tasks``-long chain over one date."""
    return measure(runs, tasks=tasks, dates=1, parallelism=parallelism, chain=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args()
    print(describe(run(args.runs, args.tasks, args.parallelism), args.tasks, args.parallelism))
    return 0


if __name__ == "__main__":
    sys.exit(main())
