"""Flux plugin: run task instances on Celery workers (``[core] executor = "celery"``, ``flux worker``).

Flux imports this package lazily through the ``celery`` entry point (``flux_celery.plugin``);
Celery itself is imported only when the executor or a worker starts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fetch_remote_log"]


def fetch_remote_log(*args: Any, **kwargs: Any) -> Any:
    """The log of a try run on another machine; see :func:`flux_celery.logserver.fetch_remote_log`."""
    from flux_celery.logserver import fetch_remote_log as fetch

    return fetch(*args, **kwargs)
