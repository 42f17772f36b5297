"""``macros.mysql`` in templates: values read from MySQL or MariaDB while a task is rendered.

::

    SELECT * FROM events WHERE id > {{ macros.mysql.max_value("events_copy", "id", "warehouse") }}
    ... PARTITION ({{ macros.mysql.latest_partition("events", "warehouse") }})

Each call opens a connection when the template is rendered (when the task runs), never while
the DAG file is parsed.
"""

from __future__ import annotations

from typing import Any

from flux.exceptions import HookError
from flux_mysql.hooks import MySqlHook

__all__ = ["latest_partition", "max_value"]


def max_value(table: str, column: str, mysql_dbid: str | None = None) -> Any:
    """The largest value of ``column`` in ``table`` (``schema.table`` allowed); None when empty."""
    hook = MySqlHook(mysql_dbid=mysql_dbid)
    sql = f"SELECT MAX({hook.quote_identifier(column)}) FROM {hook.quote_identifier(table)}"
    row = hook.get_first(sql)
    return row[0] if row else None


def latest_partition(table: str, mysql_dbid: str | None = None) -> str:
    """The name of the newest partition of ``table`` (``schema.table`` allowed).

    The newest is the last one in the table's partition order, leaving out a ``VALUES LESS THAN
    MAXVALUE`` catch-all (which holds the future rather than the latest data) unless it is the
    only partition. Raises :class:`HookError` for a table that does not exist or is not
    partitioned.
    """
    hook = MySqlHook(mysql_dbid=mysql_dbid)
    schema, _, name = table.rpartition(".")
    rows = hook.get_records(
        "SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM information_schema.PARTITIONS "
        "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s "
        "ORDER BY PARTITION_ORDINAL_POSITION",
        (schema or None, name),
    )
    if not rows:
        raise HookError(f"latest_partition: table {table!r} does not exist on {hook.conn_id!r}")
    partitions = [(partition, description) for partition, description in rows if partition is not None]
    if not partitions:
        raise HookError(f"latest_partition: table {table!r} on {hook.conn_id!r} is not partitioned")
    bounded = [partition for partition, description in partitions
               if str(description or "").upper() != "MAXVALUE"]
    return (bounded or [partitions[0][0]])[-1]
