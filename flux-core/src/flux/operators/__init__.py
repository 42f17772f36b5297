"""Operators: the kinds of task a DAG is made of.

``from flux.operators import MySqlOperator`` resolves to whatever installed plugin registered it
(through ``flux_operators``); core registers its own operators the same way.
"""

from __future__ import annotations

from typing import Any

_CORE = {
    "BaseOperator": "flux.baseoperator",
    "BaseSensorOperator": "flux.sensors",
}


def __getattr__(name: str) -> Any:
    from flux.plugins import resolve_attribute

    return resolve_attribute(__name__, "operators", name, _CORE)


def __dir__() -> list[str]:
    from flux.plugins import get_plugin_manager

    return sorted(set(_CORE) | set(get_plugin_manager().operators()))
