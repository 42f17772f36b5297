"""A command running in its own process group: its output read line by line, the group stopped whole.

Knows nothing about tasks or templates, only about processes, so the operator and the sensor share it.
"""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

#: a line longer than this is passed on in pieces, so one huge line cannot exhaust memory
MAX_LINE_BYTES = 1024 * 1024
#: how often the group is checked while waiting for it to exit
POLL_SECONDS = 0.05
#: how long to wait for the group to disappear after SIGKILL (only uninterruptible sleep delays it)
KILL_WAIT_SECONDS = 5.0

_PROC = Path("/proc")


class RunningCommand:
    """A started command: ``lines()`` streams its merged stdout/stderr, ``stop()`` ends its group.

    The command is the leader of a new session (hence of a new process group whose id is its pid),
    so everything it starts, grandchildren included, can be signalled at once.
    """

    def __init__(self, argv: list[str], env: Mapping[str, str], cwd: str | None) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
        self.pgid = self.proc.pid
        self._lock = threading.Lock()

    def lines(self, encoding: str) -> Iterator[str]:
        """Each output line as it arrives, decoded (bad bytes become U+FFFD), without its newline."""
        stream = self.proc.stdout
        assert stream is not None
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        while True:
            raw = stream.readline(MAX_LINE_BYTES)
            if not raw:
                tail = decoder.decode(b"", final=True)
                if tail:
                    yield tail
                return
            text = decoder.decode(raw)
            if text.endswith("\n"):
                text = text[:-1]
                if text.endswith("\r"):
                    text = text[:-1]
            yield text

    def wait(self) -> int:
        """Wait for the command itself to exit; its exit code (negative: killed by that signal)."""
        return self.proc.wait()

    def group_alive(self) -> bool:
        """Whether any process of the group is still running (zombies do not count)."""
        self.proc.poll()  # reap the leader, so that it does not count as a member
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            # The id now names someone else's group: ours is gone.
            return False
        return _has_live_member(self.pgid)

    def stop(self, grace_seconds: float) -> bool:
        """SIGTERM the whole group, then SIGKILL what is left after ``grace_seconds``.

        Safe to call from several threads and more than once. Returns whether anything was running.
        """
        with self._lock:
            if not self.group_alive():
                self._reap()
                return False
            self._signal(signal.SIGTERM)
            try:
                deadline = time.monotonic() + max(grace_seconds, 0.0)
                while self.group_alive() and time.monotonic() < deadline:
                    time.sleep(POLL_SECONDS)
            finally:
                # Also reached when a second kill request interrupts the grace period.
                if self.group_alive():
                    self._signal(signal.SIGKILL)
                    deadline = time.monotonic() + KILL_WAIT_SECONDS
                    while self.group_alive() and time.monotonic() < deadline:
                        time.sleep(POLL_SECONDS)
                self._reap()
            return True

    def close(self) -> None:
        """Release the pipe (after the group is gone)."""
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.pgid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _reap(self) -> None:
        try:
            self.proc.wait(timeout=KILL_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            pass


def _has_live_member(pgid: int) -> bool:
    """Whether a non-zombie process has process group ``pgid`` (``/proc`` where there is one)."""
    if not _PROC.is_dir():
        return True
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # exited while we looked
        # Fields after the command name (which may hold spaces and parentheses): state ppid pgrp ...
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False
