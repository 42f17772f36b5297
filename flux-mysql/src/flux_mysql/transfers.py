"""Transfers: MySQL to MySQL, MySQL to a CSV file, a CSV file to MySQL."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from flux.baseoperator import BaseOperator
from flux.exceptions import DagDefinitionError, HookError
from flux.transfers import DbApiToDbApiTransfer
from flux_mysql.errors import task_errors
from flux_mysql.hooks import ON_DUPLICATE, MySqlHook
from flux_mysql.operators import _check_sql


class MySqlToMySqlOperator(DbApiToDbApiTransfer):
    """Stream the rows of ``sql`` from one MySQL/MariaDB database into a table of another.

    Rows are fetched ``batch_size`` at a time with an unbuffered cursor and inserted in batches,
    so memory stays flat. ``preoperator``, the inserts and ``postoperator`` run in one
    transaction on the destination: a failure leaves the table as it was (``TRUNCATE`` and other
    DDL commit by themselves in MySQL: prefer ``DELETE`` in a preoperator).

    :param sql: the query on the source (templated; a ``.sql`` file name is read as a template).
    :param source_mysql_dbid: the source connection.
    :param destination_mysql_dbid: the destination connection (may be the same).
    :param destination_table: the table to fill (templated), ``table`` or ``schema.table``.
    :param on_duplicate: what a row whose key exists already does: ``"error"`` (fail, nothing is
        kept), ``"replace"`` (``REPLACE INTO``: the new row replaces the old one) or
        ``"ignore"`` (the old row stays).
    :param destination_columns, preoperator, postoperator, parameters, batch_size: as in
        :class:`flux.transfers.DbApiToDbApiTransfer`.
    """

    ui_color: ClassVar[str] = "#e0ecd8"

    def __init__(
        self,
        *,
        sql: str,
        source_mysql_dbid: str,
        destination_mysql_dbid: str,
        destination_table: str,
        preoperator: str | Sequence[str] | None = None,
        postoperator: str | Sequence[str] | None = None,
        batch_size: int = 10000,
        on_duplicate: str = "error",
        **kwargs: Any,
    ) -> None:
        super().__init__(sql=sql, source_conn_id=source_mysql_dbid,
                         destination_conn_id=destination_mysql_dbid, destination_table=destination_table,
                         preoperator=preoperator, postoperator=postoperator, batch_size=batch_size, **kwargs)
        _check_sql(sql, self.task_id)
        if on_duplicate not in ON_DUPLICATE:
            raise DagDefinitionError(f"task {self.task_id!r}: on_duplicate must be one of "
                                     f"{', '.join(map(repr, ON_DUPLICATE))}, not {on_duplicate!r}")
        self.source_mysql_dbid = source_mysql_dbid
        self.destination_mysql_dbid = destination_mysql_dbid
        self.on_duplicate = on_duplicate

    def get_hook(self, conn_id: str) -> MySqlHook:
        return MySqlHook(mysql_dbid=conn_id)

    def write_rows(self, hook: Any, conn: Any, columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
        return hook._insert(conn, self.destination_table, columns, rows, self.batch_size,
                            on_duplicate=self.on_duplicate)

    def execute(self, context: dict[str, Any]) -> int:
        with task_errors(f"task {self.task_id!r}"):
            return super().execute(context)


class MySqlToCsvOperator(BaseOperator):
    """Write the result of ``sql`` to the CSV file ``path`` (streamed; UTF-8, with a header line).

    The file appears only once complete; missing parent folders are created. Returns (and pushes
    as XCom) the number of rows written.

    :param sql: the query (templated; a ``.sql`` file name is read as a template).
    :param mysql_dbid: the connection (type ``mysql``).
    :param path: the file to write (templated, e.g. ``/data/orders/{{ ds }}.csv``).
    :param parameters: values for the query's placeholders, handed to the driver.
    :param delimiter, header, null_value, batch_size: as in ``MySqlHook.to_csv``.
    """

    template_fields: ClassVar[Sequence[str]] = ("sql", "path")
    template_ext: ClassVar[Sequence[str]] = (".sql",)
    ui_color: ClassVar[str] = "#f0e4d8"

    def __init__(
        self,
        *,
        sql: str,
        mysql_dbid: str | None = None,
        path: str | os.PathLike[str],
        parameters: Sequence[Any] | Mapping[str, Any] | None = None,
        delimiter: str = ",",
        header: bool = True,
        null_value: str = "",
        batch_size: int = 10000,
        database: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_sql(sql, self.task_id)
        self.sql = sql
        self.mysql_dbid = mysql_dbid
        self.path = os.fspath(path)
        self.parameters = parameters
        self.delimiter = delimiter
        self.header = header
        self.null_value = null_value
        self.batch_size = batch_size
        self.database = database

    def execute(self, context: dict[str, Any]) -> int:
        hook = MySqlHook(mysql_dbid=self.mysql_dbid, database=self.database)
        self.log.info("Executing: %s", self.sql)
        target = Path(self.path)
        with task_errors(f"task {self.task_id!r} on {hook.conn_id!r}"):
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HookError(f"cannot create the folder of {target}: {exc.strerror or exc}") from None
            count = hook.to_csv(self.sql, target, parameters=self.parameters, delimiter=self.delimiter,
                                header=self.header, batch_size=self.batch_size, null_value=self.null_value)
        self.log.info("Wrote %d row(s) to %s", count, target)
        return count


class CsvToMySqlOperator(BaseOperator):
    """Load the CSV file ``path`` into ``table``, all or nothing (see ``MySqlHook.load_csv``).

    With ``local_infile`` true in the connection's extra (and on the server) the file is loaded
    with ``LOAD DATA LOCAL INFILE``; otherwise with batched INSERTs. Returns the row count.

    :param path: the CSV file (UTF-8; templated).
    :param table: the table to load into (templated).
    :param mysql_dbid: the connection (type ``mysql``).
    :param columns: the table columns the file's fields go into, in order; by default the
        names of the header line (or, without a header, every column of the table).
    :param delimiter, header, null_value, batch_size: as in ``MySqlHook.load_csv``.
    """

    template_fields: ClassVar[Sequence[str]] = ("path", "table")
    ui_color: ClassVar[str] = "#f0e4d8"

    def __init__(
        self,
        *,
        path: str | os.PathLike[str],
        table: str,
        mysql_dbid: str | None = None,
        columns: Sequence[str] | None = None,
        delimiter: str = ",",
        header: bool = True,
        null_value: str = "",
        batch_size: int = 10000,
        database: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = os.fspath(path)
        self.table = table
        self.mysql_dbid = mysql_dbid
        self.columns = list(columns) if columns is not None else None
        self.delimiter = delimiter
        self.header = header
        self.null_value = null_value
        self.batch_size = batch_size
        self.database = database

    def execute(self, context: dict[str, Any]) -> int:
        hook = MySqlHook(mysql_dbid=self.mysql_dbid, database=self.database)
        with task_errors(f"task {self.task_id!r} on {hook.conn_id!r}"):
            self.log.info("Loading %s into %s", self.path, self.table)
            count = hook.load_csv(self.path, self.table, columns=self.columns, delimiter=self.delimiter,
                                  header=self.header, batch_size=self.batch_size, null_value=self.null_value)
        self.log.info("Loaded %d row(s) into %s", count, self.table)
        return count
