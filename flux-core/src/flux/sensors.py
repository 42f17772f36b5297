"""``BaseSensorOperator``: a task that waits until a condition holds (a file, a row, a partition).

A sensor implements ``poke(context) -> bool``. In ``poke`` mode it keeps its worker slot and pokes
every ``poke_interval`` until the condition holds or ``timeout`` passes. In ``reschedule`` mode it
pokes once per try and, when the condition does not hold yet, gives the slot back
(:class:`~flux.exceptions.RescheduleTask`); its timeout is still measured from the first poke.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, ClassVar

from flux.baseoperator import BaseOperator
from flux.dates import as_utc, utcnow
from flux.exceptions import DagDefinitionError, RescheduleTask, SensorTimeout, TaskSkipped

POKE = "poke"
RESCHEDULE = "reschedule"


def _seconds(value: timedelta | float, name: str, task_id: str) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise DagDefinitionError(
            f"task {task_id!r}: {name} must be a number of seconds or a timedelta, got {value!r}"
        )
    if seconds < 0:
        raise DagDefinitionError(f"task {task_id!r}: {name} must not be negative")
    return seconds


class BaseSensorOperator(BaseOperator):
    """Wait for a condition: subclasses implement :meth:`poke`.

    :param poke_interval: seconds (or a timedelta) between two pokes (default 60).
    :param timeout: give up after this long, counted from the first poke (default 7 days).
    :param soft_fail: on timeout, mark the task skipped instead of failed.
    :param mode: ``"poke"`` (keep the worker slot and sleep between pokes) or ``"reschedule"``
        (poke once per try, then free the slot until the next poke is due).
    """

    ui_color: ClassVar[str] = "#e6f1f2"
    valid_modes: ClassVar[tuple[str, ...]] = (POKE, RESCHEDULE)

    def __init__(
        self,
        *,
        poke_interval: timedelta | float = 60,
        timeout: timedelta | float = timedelta(days=7),
        soft_fail: bool = False,
        mode: str = POKE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.poke_interval = _seconds(poke_interval, "poke_interval", self.task_id)
        self.timeout = _seconds(timeout, "timeout", self.task_id)
        self.soft_fail = soft_fail
        if mode not in self.valid_modes:
            raise DagDefinitionError(
                f"task {self.task_id!r}: invalid sensor mode {mode!r} "
                f"(expected {' or '.join(repr(m) for m in self.valid_modes)})"
            )
        self.mode = mode

    def poke(self, context: dict[str, Any]) -> bool:
        """Whether the condition holds now. Override this."""
        raise NotImplementedError(f"{type(self).__name__} must implement poke(context)")

    def execute(self, context: dict[str, Any]) -> Any:
        if self.mode == RESCHEDULE:
            return self._execute_reschedule(context)
        started = time.monotonic()
        pokes = 0
        while True:
            pokes += 1
            if self.poke(context):
                self.log.info("Condition met after %d poke(s)", pokes)
                return None
            elapsed = time.monotonic() - started
            if elapsed >= self.timeout:
                self._timed_out(elapsed)
            wait = min(self.poke_interval, self.timeout - elapsed)
            self.log.info("Condition not met; poking again in %g s", wait)
            time.sleep(wait)

    def _execute_reschedule(self, context: dict[str, Any]) -> Any:
        now = utcnow()
        ti = context.get("ti")
        # The runner keeps the first try's start_date across reschedules.
        first_poke = as_utc(getattr(ti, "start_date", None)) or now
        if self.poke(context):
            self.log.info("Condition met")
            return None
        elapsed = (now - first_poke).total_seconds()
        if elapsed >= self.timeout:
            self._timed_out(elapsed)
        wait = min(self.poke_interval, self.timeout - elapsed)
        raise RescheduleTask(now + timedelta(seconds=wait))

    def _timed_out(self, elapsed: float) -> None:
        message = (f"sensor {self.task_id!r} timed out: condition not met after {elapsed:.1f} s "
                   f"(timeout {self.timeout:g} s)")
        if self.soft_fail:
            raise TaskSkipped(f"{message}; soft_fail is set, so the task is skipped")
        raise SensorTimeout(message)
