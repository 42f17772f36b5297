"""What flux-celery registers with Flux (the module named by its ``flux`` entry point).

Flux imports this module on every ``flux`` command, so it imports nothing but the ``hookimpl``
marker at the top: Celery is imported only when the executor or a worker starts.
"""

from __future__ import annotations

from typing import Any

from flux.hookspecs import hookimpl


@hookimpl
def flux_executors() -> list[type]:
    """``[core] executor = "celery"`` (and ``--executor celery``) resolve to this class."""
    from flux_celery.executor import CeleryExecutor

    return [CeleryExecutor]


@hookimpl
def flux_commands() -> list[Any]:
    """``flux worker``."""
    from flux_celery.commands import COMMANDS

    return list(COMMANDS)


@hookimpl
def flux_remote_task_log(ti: Any, try_number: int, offset: int) -> tuple[str, int] | None:
    """A try's log from the log server of the worker that ran it, when that is another machine."""
    import socket

    if not ti.hostname or ti.hostname == socket.gethostname():
        return None  # ran here (or never started): the local log folder has it, or nobody has
    from flux_celery.errors import RemoteLogError
    from flux_celery.logserver import fetch_remote_log

    try:
        found = fetch_remote_log(ti.hostname, ti.dag_id, ti.task_id, ti.execution_date,
                                 try_number, offset=offset)
    except RemoteLogError as exc:
        # next_offset stays put, so a later read tries the worker again from the same place
        return f"*** could not fetch the log from worker {ti.hostname}: {exc}\n", offset
    if not found.exists:
        return None
    return found.text, found.next_offset
