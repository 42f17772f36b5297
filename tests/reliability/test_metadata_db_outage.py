"""The metadata database (a real MariaDB server) stops for ``FLUX_OUTAGE_SECONDS`` (30 s) in the
middle of a ``flux backfill``, then starts again on the same data directory and port.

The backfill (LocalExecutor, 3 workers) runs a DAG of 40 tasks (a fan-out and its join, chains)
over 3 dates. Each task appends ``<task> <date> <try> <pid>`` to a record file when it really runs
(one O_APPEND write), then works for 0.3 to 0.8 s. The database server is private to the test
(``mariadb_server.py``), so stopping it disturbs no other test.

* waited for: ``[database] reconnect_timeout_seconds`` (120 s) is longer than the outage. The
  server is SIGKILLed (a crash: connections reset, commits in flight). The backfill must wait and
  finish on its own, every instance a success, with no traceback.
* past the bound: the bound is a sixth of the outage (5 s); the server is stopped with SIGTERM (a
  clean shutdown). The backfill must give up with a one-line error and a non-zero exit code, and a
  second ``flux backfill`` once the server is back must complete the work.

Either way, at the end: every task instance of the three dates is a success (nothing queued or
running is left), every success has a record line of the try the database names, written by the
process the database names, and no try ran twice.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from flux import config, db
from flux.db import session_scope
from flux.models import TaskInstance
from flux.state import State

from .conftest import FluxProcesses, lines, wait_for, write_dag

OUTAGE_SECONDS = float(os.environ.get("FLUX_OUTAGE_SECONDS", "30"))
DATES = ("2024-01-01", "2024-01-02", "2024-01-03")
TASKS = 40
#: the outage starts once this many tries have started (about a quarter of the work)
STARTED_BEFORE_OUTAGE = 30

DAG_BODY = '''
import os
import time
from datetime import datetime, timedelta

from flux import DAG
from flux.operators import PythonOperator

RECORD = {record!r}


def work(ti, ds):
    line = f"{{ti.task_id}} {{ds}} {{ti.try_number}} {{os.getpid()}}\\n".encode()
    fd = os.open(RECORD, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    time.sleep(0.3 + sum(map(ord, ti.task_id)) % 6 / 10)


with DAG("outage", start_date=datetime(2024, 1, 1), schedule_interval="@daily") as dag:
    def task(name):
        return PythonOperator(task_id=name, python_callable=work, retries=1,
                              retry_delay=timedelta(0))

    start, join = task("start"), task("join")
    for i in range(12):
        fan = task(f"fan_{{i:02d}}")
        start >> fan
        fan >> join
    previous = join
    for i in range(6):
        following = task(f"after_{{i}}")
        previous >> following
        previous = following
    for chain in "ab":
        previous = task(f"{{chain}}_0")
        for i in range(1, 10):
            following = task(f"{{chain}}_{{i}}")
            previous >> following
            previous = following
'''


def _instances() -> list[Any]:
    with session_scope() as session:
        rows = session.execute(select(TaskInstance).where(TaskInstance.dag_id == "outage")).scalars().all()
        for row in rows:
            session.expunge(row)
        return rows


def _one_line_error(output: str) -> str:
    """The error line the CLI printed (``Error: ...``); fails if there is none or a traceback."""
    assert "Traceback" not in output, output[-5000:]
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, output[-5000:]
    return errors[0]


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "waited_for"), [("kill", True), ("term", False)],
                         ids=["sigkill-waited-for", "sigterm-past-the-bound"])
def test_metadata_db_outage_during_backfill(
        fault: str, waited_for: bool, tmp_path: Path, flux_processes: FluxProcesses,
        fast_heartbeats: dict[str, str], private_mariadb: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bound = 120.0 if waited_for else max(OUTAGE_SECONDS / 6, 1.0)
    url = private_mariadb.create_database("flux_outage")
    monkeypatch.setenv("FLUX_DATABASE_URL", url)
    config.reset_config()
    db.dispose_all()
    record = tmp_path / "record.txt"
    dags = tmp_path / "dags"
    write_dag(dags, "outage", DAG_BODY.format(record=str(record)))
    env = {"FLUX__CORE__PARALLELISM": "3", "FLUX__DATABASE__RECONNECT_TIMEOUT_SECONDS": f"{bound:g}"}
    command = ("backfill", "outage", "-s", DATES[0], "-e", DATES[-1], "-sd", str(dags))

    began = time.monotonic()
    first = flux_processes.start(*command, env=env)
    wait_for(lambda: len(lines(record)) >= STARTED_BEFORE_OUTAGE or first.poll() is not None,
             "the backfill to get going")
    assert first.poll() is None, flux_processes.output(first)
    private_mariadb.stop(fault)
    stopped = time.monotonic()
    started_before = len(lines(record))
    exited_at = None
    while time.monotonic() - stopped < OUTAGE_SECONDS:
        if exited_at is None and first.poll() is not None:
            exited_at = time.monotonic()
        time.sleep(0.1)
    alive_through_outage = first.poll() is None
    restart_seconds = private_mariadb.start()
    restarted = time.monotonic()

    code = flux_processes.wait(first, bound=OUTAGE_SECONDS + 180)
    ended = exited_at or time.monotonic()
    output = flux_processes.output(first)
    print(f"outage: SIG{fault.upper()} after {started_before} tries had started, "
          f"{restarted - stopped:.1f} s without a server (restart took {restart_seconds:.1f} s)")
    when = (f"{ended - stopped:.1f} s into the outage" if exited_at
            else f"{ended - restarted:.1f} s after the restart")
    print(f"first backfill: exit code {code} after {ended - began:.1f} s ({when})")
    if code == 0:
        assert "Traceback" not in output, output[-5000:]
        # the wait was said once, and its end
        assert output.count("cannot be reached") >= 1, output[-5000:]
        assert "Reconnected to the metadata database after" in output, output[-5000:]
    else:
        print(f"first backfill's error: {_one_line_error(output)}")
        second_began = time.monotonic()
        second = flux_processes.start(*command, env=env)
        second_code = flux_processes.wait(second, bound=180)
        second_output = flux_processes.output(second)
        print(f"second backfill: exit code {second_code} after {time.monotonic() - second_began:.1f} s")
        assert second_code == 0, second_output[-5000:]
        assert "Traceback" not in second_output, second_output[-5000:]
    if bound > OUTAGE_SECONDS:
        assert alive_through_outage and code == 0, output[-5000:]
    else:
        assert code != 0 and "gave up after waiting" in output, output[-5000:]

    instances = _instances()
    states = Counter(ti.state for ti in instances)
    retried = sorted(f"{ti.task_id} {ti.execution_date.date()}" for ti in instances if ti.try_number > 1)
    print(f"final states: {dict(states)}; instances that took a second try: {retried}")
    assert len(instances) == TASKS * len(DATES)
    assert states == {State.SUCCESS: TASKS * len(DATES)}, states

    tries = [tuple(line.split()) for line in lines(record)]
    ran = Counter((task_id, ds, int(attempt)) for task_id, ds, attempt, _ in tries)
    twice = {key: n for key, n in ran.items() if n > 1}
    assert not twice, f"tries that ran more than once: {twice}"
    pids = {(task_id, ds, int(attempt)): int(pid) for task_id, ds, attempt, pid in tries}
    for ti in instances:
        key = (ti.task_id, ti.execution_date.date().isoformat(), ti.try_number)
        assert key in pids, f"{key} is recorded as a success but never ran"
        assert pids[key] == ti.pid, f"{key} ran in process {pids[key]}, the database says {ti.pid}"
    print(f"tries run: {len(tries)} for {len(instances)} instances")
