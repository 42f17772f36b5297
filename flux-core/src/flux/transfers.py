"""``DbApiToDbApiTransfer``: copy the result of a query into a table, between any two databases.

The rows are streamed: fetched from the source through its hook's server-side cursor, and
inserted into the destination in batches, so memory stays flat whatever the row count. On the
destination, the ``preoperator``, the inserts and the ``postoperator`` share one transaction:
if anything fails, nothing of it stays (except what the database commits by itself, such as
MySQL's ``TRUNCATE``).

Plugins derive from it for their own databases (``MySqlToMySqlOperator`` in flux-mysql), usually
overriding :meth:`DbApiToDbApiTransfer.get_hook` and :meth:`DbApiToDbApiTransfer.write_rows`::

    copy = DbApiToDbApiTransfer(
        task_id="copy_orders",
        sql="SELECT id, amount FROM orders WHERE day = '{{ ds }}'",
        source_conn_id="shop", destination_conn_id="warehouse",
        destination_table="orders", preoperator="DELETE FROM orders WHERE day = '{{ ds }}'",
    )
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any, ClassVar

from flux.baseoperator import BaseOperator
from flux.exceptions import HookError

if TYPE_CHECKING:
    from flux.hooks.dbapi import DbApiHook

#: log the running row count every this many batches
_PROGRESS_EVERY = 10


class DbApiToDbApiTransfer(BaseOperator):
    """Stream the rows of ``sql`` (run on the source) into ``destination_table``.

    :param sql: the query on the source (templated; a ``.sql`` file name is read as a template).
    :param source_conn_id: the source connection; its type chooses the hook.
    :param destination_conn_id: the destination connection (may be the same as the source).
    :param destination_table: the table the rows go into (templated).
    :param destination_columns: the columns the query's columns go into, in order. By default,
        the query's own column names when every one of them is a column of the table, else all
        the table's columns in table order (the counts must then agree).
    :param preoperator: SQL run on the destination before the rows go in (templated; a string
        of statements or a list), e.g. a ``DELETE`` of the day being reloaded.
    :param postoperator: SQL run on the destination after the rows went in (templated).
    :param parameters: parameters of ``sql``, handed to the source's driver.
    :param batch_size: rows fetched and inserted at a time.
    """

    template_fields: ClassVar[Sequence[str]] = ("sql", "destination_table", "preoperator", "postoperator")
    template_ext: ClassVar[Sequence[str]] = (".sql",)
    ui_color: ClassVar[str] = "#e8f0fe"

    def __init__(
        self,
        *,
        sql: str,
        source_conn_id: str,
        destination_conn_id: str,
        destination_table: str,
        destination_columns: Sequence[str] | None = None,
        preoperator: str | Sequence[str] | None = None,
        postoperator: str | Sequence[str] | None = None,
        parameters: Sequence[Any] | dict[str, Any] | None = None,
        batch_size: int = 10000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            from flux.exceptions import DagDefinitionError

            raise DagDefinitionError(f"task {self.task_id!r}: batch_size must be a whole number >= 1")
        self.sql = sql
        self.source_conn_id = source_conn_id
        self.destination_conn_id = destination_conn_id
        self.destination_table = destination_table
        self.destination_columns = list(destination_columns) if destination_columns else None
        self.preoperator = preoperator
        self.postoperator = postoperator
        self.parameters = parameters
        self.batch_size = batch_size

    # --- what subclasses may change ------------------------------------------------------------

    def get_hook(self, conn_id: str) -> DbApiHook:
        """The hook of a connection; by default the one registered for its type."""
        from flux.hooks.dbapi import DbApiHook

        return DbApiHook.get_hook(conn_id)

    def write_rows(
        self, hook: DbApiHook, conn: Any, columns: Sequence[str], rows: Iterator[Sequence[Any]]
    ) -> int:
        """Insert ``rows`` into the destination table on the open connection ``conn``."""
        return hook._insert(conn, self.destination_table, columns, rows, self.batch_size)

    # --- running ---------------------------------------------------------------------------------

    def execute(self, context: dict[str, Any]) -> int:
        source = self.get_hook(self.source_conn_id)
        destination = self.get_hook(self.destination_conn_id)
        self.log.info("Executing: %s", self.sql)
        with destination._connected() as target:
            try:
                if self.preoperator:
                    self.log.info("Running the preoperator on %r", self.destination_conn_id)
                    _run_statements(destination, target, self.preoperator)
                count = self._copy(source, destination, target)
                if self.postoperator:
                    self.log.info("Running the postoperator on %r", self.destination_conn_id)
                    _run_statements(destination, target, self.postoperator)
                target.commit()
            except BaseException:
                destination._rollback(target)
                raise
        self.log.info("Transferred %d row(s) into %s", count, self.destination_table)
        return count

    def _copy(self, source: DbApiHook, destination: DbApiHook, target: Any) -> int:
        with source._connected() as origin:
            cursor = source.get_server_side_cursor(origin)
            try:
                source._execute(cursor, self.sql, self.parameters)
                if cursor.description is None:
                    raise HookError(f"task {self.task_id!r}: the source SQL returned no rows to copy "
                                    "(it is not a query)")
                names = [column[0] for column in cursor.description]
                columns = self._target_columns(destination, target, names)
                return self.write_rows(destination, target, columns, self._stream(cursor))
            finally:
                cursor.close()

    def _target_columns(self, hook: DbApiHook, conn: Any, names: list[str]) -> list[str]:
        if self.destination_columns:
            if len(self.destination_columns) != len(names):
                raise HookError(
                    f"task {self.task_id!r}: the query returns {len(names)} column(s) but "
                    f"destination_columns names {len(self.destination_columns)}"
                )
            return list(self.destination_columns)
        table_columns = hook._table_columns(conn, self.destination_table)
        by_lower = {column.lower(): column for column in table_columns}
        if all(name.lower() in by_lower for name in names) and len({n.lower() for n in names}) == len(names):
            return [by_lower[name.lower()] for name in names]
        if len(names) == len(table_columns):
            return table_columns
        raise HookError(
            f"task {self.task_id!r}: the query's columns ({', '.join(names)}) are not columns of "
            f"{self.destination_table} ({', '.join(table_columns)}), and their number differs; "
            "alias them in the query or pass destination_columns"
        )

    def _stream(self, cursor: Any) -> Iterator[Sequence[Any]]:
        batches = total = 0
        while True:
            rows = cursor.fetchmany(self.batch_size)
            if not rows:
                return
            yield from rows
            batches += 1
            total += len(rows)
            if batches % _PROGRESS_EVERY == 0:
                self.log.info("%d row(s) read so far", total)


def _run_statements(hook: DbApiHook, conn: Any, sql: str | Sequence[str]) -> None:
    statements = hook.split_sql(sql) if isinstance(sql, str) else [s for s in sql if s and s.strip()]
    with closing(conn.cursor()) as cursor:
        for statement in statements:
            hook.log.info("Running SQL: %s", statement)
            cursor.execute(statement)
