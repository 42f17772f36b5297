"""Helpers of the reliability tests: real processes (``flux scheduler``, ``flux backfill``,
``flux run``) started as subprocesses, real faults (SIGKILL, timeouts), and the records to check.

Every subprocess starts in a session of its own, so that whatever is left of it (its forked
workers included) is killed at the end of the test, whatever happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from flux.dates import UTC

HERE = Path(__file__).resolve().parent
RECORDING_CLI = HERE / "flux_recording.py"
DAY1 = datetime(2024, 1, 1, tzinfo=UTC)
#: upper bound of every wait (never reached when things work; a bug fails instead of hanging)
WAIT_BOUND_SECONDS = 90.0


def wait_for(condition: Callable[[], Any], what: str, bound: float = WAIT_BOUND_SECONDS) -> Any:
    """Poll ``condition`` until it returns something true; fail the test after ``bound`` seconds."""
    deadline = time.monotonic() + bound
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def write_dag(folder: Path, name: str, body: str) -> Path:
    """Write ``folder/name.py`` from ``body`` (dedented); return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return path


def task_instance(dag_id: str, task_id: str, when: datetime = DAY1) -> Any:
    """The stored task instance (detached), or None."""
    from flux.db import session_scope
    from flux.models import TaskInstance

    with session_scope() as session:
        ti = session.get(TaskInstance, (dag_id, task_id, when))
        if ti is not None:
            session.expunge(ti)
        return ti


def lines(path: Path) -> list[str]:
    """The lines of a file the tasks append to ([] while it does not exist)."""
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@dataclass(frozen=True)
class Transition:
    """One committed state change, as ``flux_recording.py`` recorded it."""

    at: float
    pid: int
    task_id: str
    try_number: int
    previous: str | None
    state: str | None


def transitions(path: Path) -> list[Transition]:
    """Every recorded state change, in the order they were written."""
    found = []
    for line in lines(path):
        at, pid, task_id, tries, previous, state = line.split(" ")
        found.append(Transition(float(at), int(pid), task_id, int(tries),
                                None if previous == "None" else previous,
                                None if state == "None" else state))
    return found


class FluxProcesses:
    """Starts ``flux`` commands (with the state-change recorder) and cleans up after them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[subprocess.Popen[bytes]] = []
        self.transitions = workdir / "transitions.txt"

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``flux ARGS...`` in a new session; its output goes to a file (see :meth:`output`)."""
        out = open(self.workdir / f"flux-{len(self.started)}.out", "wb")
        process = subprocess.Popen(
            [sys.executable, str(RECORDING_CLI), *args],
            env={**os.environ, "FLUX_TEST_TRANSITIONS": str(self.transitions), **(env or {})},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.workdir)
        out.close()
        self.started.append(process)
        return process

    def output(self, process: subprocess.Popen[bytes]) -> str:
        index = self.started.index(process)
        return (self.workdir / f"flux-{index}.out").read_text(encoding="utf-8", errors="replace")

    def wait(self, process: subprocess.Popen[bytes], bound: float = WAIT_BOUND_SECONDS) -> int:
        try:
            return process.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            pytest.fail(f"flux process {process.args[2:]} still runs after {bound} s:\n"
                        f"{self.output(process)[-3000:]}")

    def stop(self, process: subprocess.Popen[bytes]) -> int:
        """SIGTERM (how an operator stops a scheduler), then wait for it to exit."""
        process.send_signal(signal.SIGTERM)
        return self.wait(process)

    def cleanup(self) -> None:
        for process in self.started:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def flux_processes(tmp_path: Path) -> Iterator[FluxProcesses]:
    """Start flux commands as subprocesses; every one left (and its workers) is killed afterwards."""
    processes = FluxProcesses(tmp_path)
    yield processes
    processes.cleanup()


@pytest.fixture
def fast_heartbeats(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Short heartbeat, zombie threshold, loop interval and grace period (here and in subprocesses)."""
    from flux import config

    settings = {
        "FLUX__SCHEDULER__HEARTBEAT_SECONDS": "1",
        "FLUX__SCHEDULER__ZOMBIE_THRESHOLD_SECONDS": "3",
        "FLUX__SCHEDULER__LOOP_INTERVAL": "0.2",
        "FLUX__CORE__KILLED_TASK_GRACE_SECONDS": "1",
        "FLUX__CORE__PARALLELISM": "2",
        "FLUX__CORE__EXECUTOR": "local",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    config.reset_config()
    return settings


@pytest.fixture
def private_mariadb(tmp_path: Path) -> Iterator[Any]:
    """A MariaDB server of the test's own, to stop and start (skipped if MariaDB is not installed)."""
    from .mariadb_server import MariaDBServer

    server = MariaDBServer(tmp_path / "mariadb")
    try:
        initialised = server.init()
        started = server.start()
        print(f"private MariaDB on port {server.port}: data directory initialised in "
              f"{initialised:.1f} s, server answering {started:.1f} s after its start")
        yield server
    finally:
        server.close()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"
