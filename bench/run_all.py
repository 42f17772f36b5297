"""Every benchmark workload, one line each, with its ratio to the floor measured in the same run.

Order: the floor first (what this machine can do without an orchestrator, see ``floor.py``), then
fan-out, chain, DAG parsing, CLI start-up and the fan-out's memory; then every other runner found
in ``bench/`` (web pages, transfers...), each in its own process, its lines passed through. The
ratio says how many times the floor's time per task instance a workload takes (1.0x would be no
overhead at all); the chain is compared with the serial floor, since its tasks cannot overlap::

    floor: 1000 x bash -c true (2 threads) 0.42 s + 3000 SQLite commits 0.03 s = 2216 TI/s, ...
    fan-out: 1000 TIs (100 BashOperator x 10 dates, local, parallelism 2) in 2.34 s = 428 TI/s
             (median of 3) -- 5.2x floor

``nox -s bench`` runs this file in a fresh environment built from the repository. Numbers depend on
the machine: compare runs made on the same one. Nothing is asserted; the exit code is 1 only if a
workload could not run.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

import chain
import fanout
import floor

HERE = Path(__file__).resolve().parent
#: runners this file drives itself (the others in bench/ are run after them, as they are)
DRIVEN = {"run_all.py", "floor.py", "fanout.py", "chain.py", "parse_dags.py", "cli_startup.py"}


def run_script(name: str, *args: str) -> bool:
    """Run another bench script (its own process), passing its lines through; False if it failed."""
    done = subprocess.run([sys.executable, str(HERE / name), *args], capture_output=True, text=True)
    for line in done.stdout.splitlines():
        print(line, flush=True)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        print(f"{name}: failed (exit {done.returncode}): {reason}", flush=True)
        return False
    return True


def parse_cold(runs: int) -> bool:
    """``parse_dags.py`` once per new process, ``runs`` times: the median of cold parses.

    (Within one process DagBag's file cache makes a second load of unchanged files nearly free,
    so the script's own ``--runs 3`` mostly times the cache.)
    """
    seconds, line = [], ""
    for _ in range(runs):
        done = subprocess.run([sys.executable, str(HERE / "parse_dags.py"), "--runs", "1"],
                              capture_output=True, text=True)
        found = re.search(r"^(parse: .*) in ([\d.]+) s", done.stdout, re.MULTILINE)
        if done.returncode != 0 or not found:
            reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
            print(f"parse_dags.py: failed (exit {done.returncode}): {reason}", flush=True)
            return False
        line = found.group(1)
        seconds.append(float(found.group(2)))
    print(f"{line} in {statistics.median(seconds):.3f} s (median of {runs}, each in a new "
          "process)", flush=True)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions per workload (median)")
    parser.add_argument("--cli-runs", type=int, default=20, help="runs per CLI start-up command")
    parser.add_argument("--only-core", action="store_true",
                        help="skip the other runners of bench/ (web pages, transfers...)")
    args = parser.parse_args()
    runs = args.runs
    ok = True

    parallel_floor = floor.median_floor(runs, tasks=1000, threads=2)
    print(floor.describe(parallel_floor, runs), flush=True)
    serial_floor = floor.median_floor(runs, tasks=200, threads=1)
    print(floor.describe(serial_floor, runs), flush=True)

    fanout_reps = None
    try:
        fanout_reps = fanout.measure(runs, tasks=100, dates=10, parallelism=2)
        rate = fanout.median_rep(fanout_reps).rate
        print(f"{fanout.describe(fanout_reps, 100, 10, 2)} -- "
              f"{parallel_floor.rate / rate:.1f}x floor", flush=True)
    except RuntimeError as exc:
        print(f"fan-out: failed: {exc}", flush=True)
        ok = False

    try:
        chain_reps = chain.run(runs, tasks=200, parallelism=2)
        per_hop = chain.ms_per_hop(fanout.median_rep(chain_reps), 200)
        print(f"{chain.describe(chain_reps, 200, 2)} -- "
              f"{per_hop / serial_floor.ms_per_task:.1f}x serial floor", flush=True)
    except RuntimeError as exc:
        print(f"chain: failed: {exc}", flush=True)
        ok = False

    ok &= parse_cold(runs)
    ok &= run_script("cli_startup.py", "--runs", str(args.cli_runs))
    if fanout_reps:
        print(fanout.describe_memory(fanout_reps), flush=True)
    if not args.only_core:
        for runner in sorted(p.name for p in HERE.glob("*.py") if p.name not in DRIVEN):
            ok &= run_script(runner)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
