"""What flux-mysql registers with Flux (the module named by its ``flux`` entry point).

Flux imports this module on every ``flux`` command, so it imports nothing but the ``hookimpl``
marker at the top; the hook, operators and PyMySQL are imported only when Flux asks for them.
"""

from __future__ import annotations

from typing import Any

from flux.hookspecs import hookimpl


@hookimpl
def flux_hooks() -> list[type]:
    """``from flux.hooks import MySqlHook``; connections of type ``mysql`` use it."""
    from flux_mysql.hooks import MySqlHook

    return [MySqlHook]


@hookimpl
def flux_operators() -> list[type]:
    """The operator, the sensor and the transfers, importable from ``flux.operators``."""
    from flux_mysql.operators import MySqlOperator
    from flux_mysql.sensors import MySqlSensor
    from flux_mysql.transfers import CsvToMySqlOperator, MySqlToCsvOperator, MySqlToMySqlOperator

    return [MySqlOperator, MySqlSensor, MySqlToMySqlOperator, MySqlToCsvOperator, CsvToMySqlOperator]


@hookimpl
def flux_macros() -> dict[str, Any]:
    """``macros.mysql.max_value(...)`` and ``macros.mysql.latest_partition(...)`` in templates."""
    from flux_mysql import macros

    return {"mysql": macros}
