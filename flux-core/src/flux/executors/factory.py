"""Choosing an executor by name (``[core] executor``, ``--executor``), among those plugins registered."""

from __future__ import annotations

from flux.exceptions import ExecutorError, MissingPluginError
from flux.executors.base import BaseExecutor


def make_executor(name: str | BaseExecutor | None = None, parallelism: int | None = None) -> BaseExecutor:
    """An executor instance: ``name`` (default ``[core] executor``) with ``parallelism``."""
    if isinstance(name, BaseExecutor):
        return name
    from flux.config import get_config
    from flux.plugins import get_plugin_manager

    name = name or str(get_config().get("core", "executor", "local"))
    available = get_plugin_manager().executors()
    cls = available.get(name)
    if cls is None:
        try:
            get_plugin_manager().get("executors", name)
        except MissingPluginError as exc:
            raise ExecutorError(f"unknown executor {name!r}: {exc}") from None
        raise ExecutorError(f"unknown executor {name!r}; available: {', '.join(sorted(available))}")
    if parallelism is not None and parallelism < 1:
        raise ExecutorError(f"parallelism must be at least 1, got {parallelism}")
    return cls(parallelism)
