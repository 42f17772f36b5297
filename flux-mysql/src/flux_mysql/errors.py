"""Turning driver and hook errors raised inside a task into one clear line of the task log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flux.exceptions import (
    FluxError,
    RescheduleTask,
    TaskFailed,
    TaskKilled,
    TaskSkipped,
    TaskTimeout,
)

#: errors that steer the task runner itself: they pass through unchanged
_TASK_CONTROL = (TaskFailed, TaskSkipped, TaskTimeout, TaskKilled, RescheduleTask)


def describe(exc: BaseException) -> str:
    """``MySQL error 1064: You have an error in your SQL syntax...`` for a PyMySQL error."""
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        message = " ".join(str(args[1]).split())
        return f"MySQL error {args[0]}: {message}"
    return " ".join(str(exc).split()) or type(exc).__name__


@contextmanager
def task_errors(what: str) -> Iterator[None]:
    """Inside a task: a PyMySQL error or a Flux error (an unreachable server, an unknown
    connection...) fails it with ``what: <reason>``.

    The server's message is kept whole; the traceback, which tells a DAG author nothing more, is
    left out of the log.
    """
    import pymysql

    try:
        yield
    except pymysql.MySQLError as exc:
        raise TaskFailed(f"{what}: {describe(exc)}") from exc
    except _TASK_CONTROL:
        raise
    except FluxError as exc:
        raise TaskFailed(f"{what}: {exc}") from exc
