"""Schedules: when a DAG's runs fall (``timedelta``, cron string, preset or ``None``).

An execution date ``D`` names the interval that starts at ``D``; its run is due once the next
schedule point after ``D`` has passed (so the daily run of 2014-09-01 runs on 2014-09-02).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from flux.dates import UTC, as_utc
from flux.exceptions import ScheduleError

PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

#: A guard against unbounded loops over dates (a minutely schedule over a century, say).
MAX_DATES = 1_000_000


class Schedule:
    """Base class: ``align`` a date onto the schedule, step ``following``/``previous``."""

    #: does the scheduler create runs by itself?
    automatic = True

    def align(self, when: datetime) -> datetime | None:
        """The first schedule point at or after ``when``."""
        raise NotImplementedError

    def following(self, when: datetime) -> datetime | None:
        """The schedule point after ``when`` (which is itself on the schedule)."""
        raise NotImplementedError

    def previous(self, when: datetime) -> datetime | None:
        """The schedule point before ``when`` (which is itself on the schedule)."""
        raise NotImplementedError

    def dates_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Every schedule point from ``start`` (aligned) up to ``end``, both included."""
        current = self.align(start)
        count = 0
        while current is not None and current <= end:
            yield current
            count += 1
            if count >= MAX_DATES:
                raise ScheduleError(f"more than {MAX_DATES} dates between {start} and {end}")
            current = self.following(current)

    def describe(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class DeltaSchedule(Schedule):
    """Every ``delta``, counted from the start date."""

    def __init__(self, delta: timedelta) -> None:
        if delta <= timedelta(0):
            raise ScheduleError(f"schedule_interval must be a positive duration, got {delta}")
        self.delta = delta

    def align(self, when: datetime) -> datetime:
        return when

    def following(self, when: datetime) -> datetime:
        return when + self.delta

    def previous(self, when: datetime) -> datetime:
        return when - self.delta

    def describe(self) -> str:
        """``1 day``, ``2 hours 30 minutes``... (``str(timedelta)`` reads ``1 day, 0:00:00``)."""
        seconds = int(self.delta.total_seconds())
        parts = []
        for name, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
            count, seconds = divmod(seconds, size)
            if count:
                parts.append(f"{count} {name}{'s' if count > 1 else ''}")
        return " ".join(parts) or str(self.delta)


class CronSchedule(Schedule):
    """A cron expression (``"0 3 * * *"``) or preset (``"@daily"``), evaluated in UTC."""

    def __init__(self, expression: str) -> None:
        from croniter import croniter

        # croniter costs ~0.2 ms a step; the scheduler and backfill ask for the same steps often
        self._next: dict[datetime, datetime] = {}
        self._prev: dict[datetime, datetime] = {}
        self.expression = expression
        self.cron = PRESETS.get(expression, expression)
        if not croniter.is_valid(self.cron):
            raise ScheduleError(
                f"invalid schedule_interval {expression!r}: expected a cron expression like "
                f"'0 0 * * *', one of {', '.join(['@once', *PRESETS])}, a timedelta or None"
            )

    def _iter(self, when: datetime) -> Any:
        from croniter import croniter

        return croniter(self.cron, when.astimezone(UTC))

    def align(self, when: datetime) -> datetime:
        if self._matches(when):
            return when
        return self.following(when)

    def _matches(self, when: datetime) -> bool:
        from croniter import croniter

        return bool(croniter.match(self.cron, when.astimezone(UTC))) and when.second == 0 \
            and when.microsecond == 0

    def following(self, when: datetime) -> datetime:
        found = self._next.get(when)
        if found is None:
            found = self._next[when] = as_utc(self._iter(when).get_next(datetime))  # type: ignore[assignment]
        return found

    def previous(self, when: datetime) -> datetime:
        found = self._prev.get(when)
        if found is None:
            found = self._prev[when] = as_utc(self._iter(when).get_prev(datetime))  # type: ignore[assignment]
        return found

    def describe(self) -> str:
        return self.expression


class OnceSchedule(Schedule):
    """``@once``: a single run, at the start date."""

    def align(self, when: datetime) -> datetime:
        return when

    def following(self, when: datetime) -> None:
        return None

    def previous(self, when: datetime) -> None:
        return None

    def dates_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        if start <= end:
            yield start

    def describe(self) -> str:
        return "@once"


class ManualSchedule(OnceSchedule):
    """``None``: runs only when triggered by hand; a date range runs exactly the dates asked for."""

    automatic = False

    def describe(self) -> str:
        return "None"


def make_schedule(value: Any) -> Schedule:
    """The :class:`Schedule` for a DAG's ``schedule_interval``."""
    if isinstance(value, Schedule):
        return value
    if value is None:
        return ManualSchedule()
    if isinstance(value, timedelta):
        return DeltaSchedule(value)
    if isinstance(value, str):
        if value == "@once":
            return OnceSchedule()
        return CronSchedule(value.strip())
    raise ScheduleError(
        f"invalid schedule_interval {value!r}: expected a timedelta, a cron string, a preset or None"
    )
