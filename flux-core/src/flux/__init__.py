"""Flux, a workflow orchestrator: pipelines are Python files of tasks (DAGs), run over dates.

The public face; everything here is imported lazily so that ``flux --help`` stays fast::

    from flux import DAG, BaseOperator, BaseHook, BaseExecutor, hookimpl, State
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "DAG": "flux.dag",
    "BaseOperator": "flux.baseoperator",
    "BaseHook": "flux.hooks.base",
    "DbApiHook": "flux.hooks.dbapi",
    "BaseExecutor": "flux.executors.base",
    "BaseSensorOperator": "flux.sensors",
    "hookimpl": "flux.hookspecs",
    "State": "flux.state",
    "TriggerRule": "flux.state",
}

__all__ = [  # noqa: RUF022 - grouped as in _EXPORTS
    "DAG", "BaseOperator", "BaseHook", "DbApiHook", "BaseExecutor", "BaseSensorOperator",
    "hookimpl", "State", "TriggerRule",
]

if TYPE_CHECKING:
    from flux.baseoperator import BaseOperator
    from flux.dag import DAG
    from flux.executors.base import BaseExecutor
    from flux.hooks.base import BaseHook
    from flux.hooks.dbapi import DbApiHook
    from flux.hookspecs import hookimpl
    from flux.sensors import BaseSensorOperator
    from flux.state import State, TriggerRule


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flux' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
