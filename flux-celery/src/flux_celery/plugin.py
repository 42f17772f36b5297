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
