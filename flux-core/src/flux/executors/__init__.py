"""Executors: what runs task instances once the scheduler or a backfill decided they are ready.

``from flux.executors import LocalExecutor`` resolves to whatever installed plugin registered it
(through ``flux_executors``); core registers its own executors the same way.
"""

from __future__ import annotations

from typing import Any

_CORE = {"BaseExecutor": "flux.executors.base"}


def __getattr__(name: str) -> Any:
    from flux.plugins import resolve_attribute

    return resolve_attribute(__name__, "executors", name, _CORE)


def __dir__() -> list[str]:
    from flux.plugins import get_plugin_manager

    names = {cls.__name__ for cls in get_plugin_manager().executors().values()}
    return sorted(set(_CORE) | names)
