"""Hooks: connections to outside systems.

``from flux.hooks import MySqlHook`` resolves to whatever installed plugin registered ``MySqlHook``
(through ``flux_hooks``); core itself provides :class:`BaseHook` and :class:`DbApiHook`.
"""

from __future__ import annotations

from typing import Any

_CORE = {
    "BaseHook": "flux.hooks.base",
    "DbApiHook": "flux.hooks.dbapi",
}


def __getattr__(name: str) -> Any:
    from flux.plugins import resolve_attribute

    return resolve_attribute(__name__, "hooks", name, _CORE)


def __dir__() -> list[str]:
    from flux.plugins import get_plugin_manager

    names = {cls.__name__ for cls in get_plugin_manager().hooks().values()}
    return sorted(set(_CORE) | names)
