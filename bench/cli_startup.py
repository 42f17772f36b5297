"""How long the ``flux`` command takes to start: ``flux --help``, then ``flux dags list``.

Each command runs as a fresh process (what a user waits for at the prompt), twice to warm the
file-system cache, then ``--runs`` times; the median is printed, one line per command::

    cli --help: median 71.2 ms (n=20)

Run it in an environment where flux-core is installed from this repository (``nox -s bench``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO_ROOT / "examples" / "dags"


def flux_executable() -> str:
    """The ``flux`` console script of the running interpreter's environment (else the one on PATH)."""
    beside = Path(sys.executable).with_name("flux")
    if beside.is_file():
        return str(beside)
    found = shutil.which("flux")
    if not found:
        sys.exit("bench: no 'flux' command found; install ./flux-core first")
    return found


def median_ms(argv: list[str], runs: int, warmups: int, env: dict[str, str]) -> float:
    """Median wall time of ``argv`` in milliseconds; raises CalledProcessError if it fails."""
    for _ in range(warmups):
        subprocess.run(argv, env=env, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def has_command(flux: str, words: list[str], env: dict[str, str]) -> bool:
    """Whether ``flux <words> --help`` exists (exits 0)."""
    probe = subprocess.run([flux, *words, "--help"], env=env, capture_output=True)
    return probe.returncode == 0


def main() -> int:
    """Measure and print one line per command; exit 1 if a command failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs per command (default 20)")
    parser.add_argument("--warmups", type=int, default=2, help="unmeasured runs first (default 2)")
    args = parser.parse_args()

    flux = flux_executable()
    failed = False
    with tempfile.TemporaryDirectory(prefix="flux-bench-") as home:
        # A private FLUX_HOME keeps the user's own database and settings out of the measurement.
        env = {**os.environ, "FLUX_HOME": home, "FLUX__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS)}
        env.pop("FLUX_DATABASE_URL", None)
        for label, words in (("cli --help", ["--help"]), ("dags list", ["dags", "list"])):
            if words != ["--help"] and not has_command(flux, words, env):
                print(f"{label}: skipped (no 'flux {' '.join(words)}' command yet)")
                continue
            try:
                ms = median_ms([flux, *words], args.runs, args.warmups, env)
            except subprocess.CalledProcessError as exc:
                reason = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
                print(f"{label}: failed (exit {exc.returncode}: {reason[-1] if reason else 'no message'})")
                failed = True
                continue
            print(f"{label}: median {ms:.1f} ms (n={args.runs})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
