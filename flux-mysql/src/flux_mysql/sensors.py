"""``MySqlSensor``: wait until a query on MySQL or MariaDB says yes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from flux.sensors import BaseSensorOperator
from flux_mysql.errors import task_errors
from flux_mysql.operators import _check_sql

#: first cells that count as "not yet" besides None, False and zero
_FALSY_TEXT = frozenset({"", "0"})


def is_truthy(value: Any) -> bool:
    """Whether a query's first cell means "yes": not NULL, zero, ``''``, ``'0'`` or ``False``."""
    if value is None:
        return False
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        return value.strip() not in _FALSY_TEXT
    if isinstance(value, (int, float, Decimal)):
        return value != 0
    return bool(value)


class MySqlSensor(BaseSensorOperator):
    """Poke ``sql`` until its first row's first cell is truthy (see :func:`is_truthy`).

    A query that returns no row is "not yet" too. Typical use::

        MySqlSensor(task_id="wait_for_orders", mysql_dbid="shop",
                    sql="SELECT COUNT(*) FROM orders WHERE day = '{{ ds }}'",
                    poke_interval=300, timeout=6 * 3600, mode="reschedule")

    :param sql: the query (templated; a ``.sql`` file name is read as a template).
    :param mysql_dbid: the connection (type ``mysql``); may come from ``default_args``.
    :param parameters: values for the query's placeholders, handed to the driver.
    :param database: use this database instead of the connection's schema.

    It also takes the sensor arguments ``poke_interval``, ``timeout``, ``soft_fail`` and ``mode``.
    A query that fails (a syntax error, a missing table, an unreachable server) fails the task.
    """

    template_fields: ClassVar[Sequence[str]] = ("sql",)
    template_ext: ClassVar[Sequence[str]] = (".sql",)
    ui_color: ClassVar[str] = "#d9e6ef"

    def __init__(
        self,
        *,
        sql: str,
        mysql_dbid: str | None = None,
        parameters: Sequence[Any] | Mapping[str, Any] | None = None,
        database: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_sql(sql, self.task_id)
        self.sql = sql
        self.mysql_dbid = mysql_dbid
        self.parameters = parameters
        self.database = database

    def poke(self, context: dict[str, Any]) -> bool:
        from flux_mysql.hooks import MySqlHook

        hook = MySqlHook(mysql_dbid=self.mysql_dbid, database=self.database)
        self.log.info("Poking: %s", self.sql)
        with task_errors(f"sensor {self.task_id!r} on {hook.conn_id!r}"):
            row = hook.get_first(self.sql, self.parameters)
        if not row:
            self.log.info("The query returned no row")
            return False
        return is_truthy(row[0])
