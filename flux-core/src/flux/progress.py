"""Progress of long work on the terminal: a redrawn bar on a tty, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from flux.cli.table import render_table

BAR_WIDTH = 30


class Progress:
    """Shows ``done/total`` and state counts; call :meth:`update` as often as you like."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self._last_draw = 0.0
        self._last_fraction = -1.0
        self._started = time.monotonic()

    def update(self, done: int, counts: Mapping[str, int] | Callable[[], Mapping[str, int]],
               force: bool = False) -> None:
        """Show progress; ``counts`` may be a callable, called only when a line is drawn."""
        if not self.enabled or self.total == 0:
            return
        now = time.monotonic()
        fraction = done / self.total
        if self.tty:
            if not force and now - self._last_draw < 0.1:
                return
            counts = counts() if callable(counts) else counts
            filled = int(BAR_WIDTH * fraction)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} {_counts(counts)}\033[K")
            self.stream.flush()
        else:
            # a line per 10% (or every 10 s) keeps CI logs readable
            if fraction == self._last_fraction and force:
                return  # the final line was already printed
            if not force and fraction - self._last_fraction < 0.1 and now - self._last_draw < 10:
                return
            self._last_fraction = fraction
            counts = counts() if callable(counts) else counts
            self.stream.write(f"{self.label}: {done}/{self.total} done {_counts(counts)}\n")
            self.stream.flush()
        self._last_draw = now

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _counts(counts: Mapping[str, int]) -> str:
    return " ".join(f"{state}={n}" for state, n in sorted(counts.items()) if n)


def summary_table(counts: Mapping[str, int]) -> str:
    """A two-column table of states and how many task instances are in each."""
    rows = [[state, n] for state, n in sorted(counts.items()) if n]
    return render_table(["state", "task instances"], rows)
