"""Helpers for the flux-bash tests: running a task through the real task runner, reading its log,
and looking at the process table (``/proc``) to see whether a command's processes are gone."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

DATE = datetime(2024, 3, 1)
#: upper bound for anything the tests wait for (never reached when things work)
WAIT_BOUND_SECONDS = 30.0


@pytest.fixture(autouse=True)
def short_grace(flux_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A short kill grace period and fast heartbeats, so the kill tests finish quickly."""
    from flux import config

    monkeypatch.setenv("FLUX__CORE__KILLED_TASK_GRACE_SECONDS", "0.5")
    monkeypatch.setenv("FLUX__SCHEDULER__HEARTBEAT_SECONDS", "0.2")
    config.reset_config()


def read_log(path: str | os.PathLike[str] | None) -> str:
    assert path is not None, "the run wrote no log"
    return Path(path).read_text(encoding="utf-8")


def log_messages(text: str) -> list[str]:
    """The message part of each ``[time] {file:line} LEVEL - message`` line of a task log."""
    return [line.split(" - ", 1)[1] for line in text.splitlines() if line.startswith("[") and " - " in line]


def wait_for(condition: Callable[[], bool], what: str, bound: float = WAIT_BOUND_SECONDS) -> None:
    """Poll ``condition`` until it holds; fail the test if it does not within ``bound`` seconds."""
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def live_group_members(pgid: int) -> list[int]:
    """Pids of the running (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members


def assert_group_gone(pgid: int) -> None:
    """Every process of group ``pgid`` exits (polled up to a bound: orphans are reaped by init)."""
    wait_for(lambda: not live_group_members(pgid), f"process group {pgid} to be gone")
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        pass
    else:  # only zombies left, waiting for their parent to reap them
        assert not live_group_members(pgid)


def pgid_from_log(text: str) -> int:
    """The ``pgid=N`` a test command printed first (bash's ``$$``: the group leader's pid)."""
    for message in log_messages(text):
        if message.startswith("pgid="):
            return int(message.split("=", 1)[1])
    raise AssertionError(f"no pgid= line in the log:\n{text}")


def write_dag_file(folder: Path, dag_id: str, body: str) -> Path:
    """Write a DAG file defining ``dag`` (id ``dag_id``) whose tasks are ``body`` (indented code)."""
    import textwrap

    path = folder / f"{dag_id}.py"
    path.write_text(
        "from datetime import datetime\n"
        "from flux.dag import DAG\n"
        "from flux.operators import BashOperator, BashSensor\n\n"
        f"with DAG({dag_id!r}, start_date=datetime(2024, 1, 1)) as dag:\n"
        + textwrap.indent(textwrap.dedent(body).strip() + "\n", "    "),
        encoding="utf-8",
    )
    return path
