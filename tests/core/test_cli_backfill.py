"""``flux backfill`` as a user runs it (a real process): summary, exit codes, re-runs, bad input,
and Ctrl-C leaving nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from flux.dates import UTC
from flux.db import session_scope
from flux.models import Job, TaskInstance
from flux.state import State

DAY1 = datetime(2024, 1, 1, tzinfo=UTC)

DAGS = textwrap.dedent('''
    import time
    from datetime import datetime

    from flux import DAG
    from flux.operators import PythonOperator


    def nap(seconds=0.0):
        time.sleep(seconds)


    def fail():
        raise ValueError("boom")


    with DAG("cli_ok", start_date=datetime(2024, 1, 1), schedule_interval="@daily") as ok:
        extract = PythonOperator(task_id="extract", python_callable=nap)
        extract >> PythonOperator(task_id="load", python_callable=nap)

    with DAG("cli_fail", start_date=datetime(2024, 1, 1), schedule_interval="@daily") as bad:
        broken = PythonOperator(task_id="broken", python_callable=fail)
        broken >> PythonOperator(task_id="after", python_callable=nap)
        PythonOperator(task_id="fine", python_callable=nap)

    with DAG("cli_slow", start_date=datetime(2024, 1, 1), schedule_interval="@daily") as slow:
        for n in range(3):
            PythonOperator(task_id=f"sleep{n}", python_callable=nap, op_kwargs={"seconds": 300})
''')


@pytest.fixture
def dag_file(tmp_path: Path) -> str:
    path = tmp_path / "dags" / "cli_dags.py"
    path.parent.mkdir()
    path.write_text(DAGS)
    return str(path)


def flux(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``flux`` command in a new process (environment: this test's FLUX_HOME and DB)."""
    return subprocess.run([sys.executable, "-m", "flux.cli.main", *args], capture_output=True,
                          text=True, timeout=240)


def backfill(dag_file: str, dag_id: str, *args: str) -> subprocess.CompletedProcess[str]:
    return flux("backfill", dag_id, "-sd", dag_file, *args)


def table_rows(stdout: str) -> dict[str, int]:
    """The summary table's ``state  count`` rows."""
    rows = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            rows[parts[0]] = int(parts[1])
    return rows


def stored() -> dict[tuple[str, str, datetime], tuple[str | None, int]]:
    with session_scope() as session:
        return {ti.key: (ti.state, ti.try_number)
                for ti in session.execute(select(TaskInstance)).scalars()}


def test_backfill_runs_and_prints_the_summary(dag_file: str) -> None:
    done = backfill(dag_file, "cli_ok", "-s", "2024-01-01", "-e", "2024-01-02", "--parallelism", "2")
    assert done.returncode == 0, done.stderr
    assert "Run summary: cli_ok from 2024-01-01 00:00:00 to 2024-01-02 00:00:00" in done.stdout
    assert table_rows(done.stdout) == {"success": 4}
    assert set(stored().values()) == {(State.SUCCESS, 1)} and len(stored()) == 4
    assert "Traceback" not in done.stderr


def test_re_running_a_completed_backfill_has_nothing_to_do(dag_file: str) -> None:
    assert backfill(dag_file, "cli_ok", "-s", "2024-01-01", "-e", "2024-01-01").returncode == 0
    again = backfill(dag_file, "cli_ok", "-s", "2024-01-01", "-e", "2024-01-01")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Nothing to do")
    assert table_rows(again.stdout) == {"success": 2}
    assert {v[1] for v in stored().values()} == {1}  # nothing ran twice


def test_failures_exit_1_with_the_table(dag_file: str) -> None:
    failed = backfill(dag_file, "cli_fail", "-s", "2024-01-01", "-e", "2024-01-01")
    assert failed.returncode == 1
    assert table_rows(failed.stdout) == {"failed": 1, "upstream_failed": 1, "success": 1}
    assert "Failed: broken 2024-01-01 00:00:00, after 2024-01-01 00:00:00" in failed.stdout
    assert "Traceback" not in failed.stderr
    # a failed range stays failed (exit 1) until cleared or --reset-failed
    again = backfill(dag_file, "cli_fail", "-s", "2024-01-01", "-e", "2024-01-01")
    assert again.returncode == 1 and again.stdout.startswith("Nothing to do")
    reset = backfill(dag_file, "cli_fail", "-s", "2024-01-01", "-e", "2024-01-01", "--reset-failed")
    assert reset.returncode == 1
    assert stored()[("cli_fail", "broken", DAY1)] == (State.FAILED, 2)
    assert stored()[("cli_fail", "fine", DAY1)] == (State.SUCCESS, 1)


def test_mark_success_and_dry_run(dag_file: str) -> None:
    dry = backfill(dag_file, "cli_ok", "-s", "2024-01-01", "-e", "2024-01-02", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    commands = dry.stdout.splitlines()
    assert len(commands) == 4 and all(c.startswith("flux run cli_ok ") for c in commands)
    assert f"flux run cli_ok load 2024-01-02T00:00:00 -sd {dag_file}" in commands
    assert stored() == {}
    marked = backfill(dag_file, "cli_ok", "-s", "2024-01-01", "-e", "2024-01-02", "-m")
    assert marked.returncode == 0 and table_rows(marked.stdout) == {"success": 4}
    assert set(stored().values()) == {(State.SUCCESS, 0)}


BAD_INPUT = {
    "start after end": (["cli_ok", "-s", "2024-01-05", "-e", "2024-01-01"],
                        ["Error: start date 2024-01-05 00:00:00 is after end date 2024-01-01"]),
    "regex matching nothing": (["cli_ok", "-t", "^nothing$"],
                               ["Error: task regex '^nothing$' matches no task of DAG 'cli_ok'",
                                "extract, load"]),
    "invalid regex": (["cli_ok", "-t", "load("], ["Error: invalid task regex 'load('"]),
    "unknown executor": (["cli_ok", "--executor", "warp"],
                         ["Error: unknown executor 'warp'", "available", "local", "sequential"]),
    "parallelism 0": (["cli_ok", "--parallelism", "0"],
                      ["Error: --parallelism must be at least 1, got 0"]),
    "unknown DAG": (["no_such_dag"], ["Error: ", "no_such_dag"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_clear_line(dag_file: str, case: str) -> None:
    args, fragments = BAD_INPUT[case]
    dates = [] if "-s" in args else ["-s", "2024-01-01", "-e", "2024-01-01"]
    result = flux("backfill", *args, *dates, "-sd", dag_file)
    assert result.returncode not in (0, None)
    assert "Traceback" not in result.stderr
    # ("flux: ..." lines are notices about the installed plugins, not about this input)
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not line.startswith("flux: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(fragments[0])
    for fragment in fragments[1:]:
        assert fragment in lines[0]
    assert stored() == {}


def test_a_bad_date_is_a_usage_error(dag_file: str) -> None:
    result = flux("backfill", "cli_ok", "-s", "someday", "-sd", dag_file)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "someday" in errors[0]


def test_ctrl_c_stops_the_backfill_and_leaves_nothing_running(dag_file: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "flux.cli.main", "backfill", "cli_slow", "-sd", dag_file,
         "-s", "2024-01-01", "-e", "2024-01-01", "--parallelism", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # ...which takes Ctrl-C: a test run started in the background (nohup, `&`) ignores
        # SIGINT, and children would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while sum(state == State.RUNNING for state, _ in stored().values()) < 2:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the tasks never started"
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    states = sorted(state or "none" for state, _ in stored().values())
    assert states == [State.FAILED, State.FAILED, "none"]
    assert table_rows(out) == {"failed": 2, "none": 1}
    with session_scope() as session:
        job = session.execute(select(Job).where(Job.job_type == "backfill")).scalar_one()
    assert job.state == "killed" and job.end_date is not None
    with pytest.raises(ProcessLookupError):  # no worker outlived the backfill
        os.killpg(process.pid, 0)
