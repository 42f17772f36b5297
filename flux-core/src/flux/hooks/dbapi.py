"""``DbApiHook``: a hook for any database with a PEP 249 (DB-API 2.0) driver.

Public API, stable for third-party plugins. A subclass implements :meth:`DbApiHook.get_conn` and
sets the few class attributes where its database differs (``placeholder``, ``identifier_quote``,
``sql_backslash_escapes``...); it may override :meth:`DbApiHook.get_server_side_cursor` so that
:meth:`DbApiHook.to_csv` streams rows instead of buffering them, and :meth:`DbApiHook.bulk_load`
to use a native bulk loader (``LOAD DATA``, ``COPY``)::

    class PostgresHook(DbApiHook):
        conn_type = "postgres"
        conn_name_attr = "postgres_conn_id"

        def get_conn(self):
            import psycopg
            c = self.connection
            return psycopg.connect(host=c.host, port=c.port, user=c.login,
                                   password=c.password, dbname=c.schema)

        def get_server_side_cursor(self, conn):
            return conn.cursor(name="flux_stream")   # a named (server-side) cursor

Every method opens its own driver connection and closes it before returning. Parameters are always
handed to the driver, never formatted into the SQL text; table and column names are quoted as
identifiers. Errors raised by the driver while running SQL propagate unchanged (so callers can catch
the driver's ``IntegrityError`` and friends); failing to connect raises :class:`HookError`.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from flux.exceptions import FluxError, HookError, MissingDependencyError
from flux.hooks.base import BaseHook

Parameters = Sequence[Any] | Mapping[str, Any] | None

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def split_statements(
    sql: str,
    *,
    backslash_escapes: bool = False,
    hash_comments: bool = False,
    dollar_quotes: bool = True,
) -> list[str]:
    """Split a script into statements at the semicolons that are outside quotes and comments.

    Understands ``'strings'`` (with doubled quotes, and backslash escapes when
    ``backslash_escapes`` as in MySQL, or in PostgreSQL ``E'...'`` strings), ``"identifiers"`` and
    ```identifiers```, ``-- comments``, ``/* comments */``, ``# comments`` when ``hash_comments``
    (MySQL), and PostgreSQL ``$tag$ bodies $tag$`` when ``dollar_quotes``. Statements with nothing
    but whitespace and comments are dropped. Procedure bodies that contain bare semicolons
    (``BEGIN ... END`` blocks) cannot be split safely: pass such statements in a list instead.
    """
    statements: list[str] = []
    start = 0
    has_code = False
    i, n = 0, len(sql)

    def is_word_char(index: int) -> bool:
        return index >= 0 and (sql[index].isalnum() or sql[index] in "_$")

    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            escapes = ch == "'" and (
                backslash_escapes or (i > 0 and sql[i - 1] in "eE" and not is_word_char(i - 2))
            )
            j = i + 1
            while j < n:
                if escapes and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # a doubled quote stands for itself
                        j += 2
                        continue
                    break
                j += 1
            i, has_code = j + 1, True
        elif sql.startswith("--", i) or (hash_comments and ch == "#"):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if sql.startswith("/*!", i):  # MySQL executable comment: it is code
                has_code = True
            i = n if end < 0 else end + 2
        elif ch == "$" and dollar_quotes and not is_word_char(i - 1) and (tag := _DOLLAR_TAG.match(sql, i)):
            end = sql.find(tag.group(0), tag.end())
            i, has_code = (n if end < 0 else end + len(tag.group(0))), True
        elif ch == ";":
            if has_code:
                statements.append(sql[start:i].strip())
            start, has_code, i = i + 1, False, i + 1
        else:
            if not ch.isspace():
                has_code = True
            i += 1
    if has_code:
        statements.append(sql[start:].strip())
    return statements


def _bytes_text(value: bytes | bytearray | memoryview) -> str:
    """Bytes as UTF-8 text when they are valid UTF-8, else as base64."""
    raw = bytes(value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")


def json_value(value: Any) -> Any:
    """A database value as JSON takes it (see :meth:`DbApiHook.get_json` for the rules)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes_text(value)
    if isinstance(value, (list, tuple)):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    return str(value)  # UUID, IP addresses, ranges...


class DbApiHook(BaseHook):
    """Base class of hooks for PEP 249 databases: records, statements, CSV, JSON and pandas.

    Subclasses implement :meth:`get_conn`. Class attributes to adjust:

    * ``placeholder``: the driver's parameter marker (``%s`` for PyMySQL and psycopg, ``?`` for
      sqlite3), used by :meth:`load_csv` and :meth:`insert_rows`;
    * ``identifier_quote``: ``"`` (standard SQL) or a backtick (MySQL);
    * ``sql_backslash_escapes``, ``sql_hash_comments``, ``sql_dollar_quotes``: how
      :meth:`run` splits a script into statements (see :func:`split_statements`).
    """

    placeholder: ClassVar[str] = "%s"
    identifier_quote: ClassVar[str] = '"'
    sql_backslash_escapes: ClassVar[bool] = False
    sql_hash_comments: ClassVar[bool] = False
    sql_dollar_quotes: ClassVar[bool] = True

    # --- what subclasses provide ---------------------------------------------------------------

    def get_conn(self) -> Any:
        """A new PEP 249 connection to the database of ``self.connection``. Subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_conn()")

    def get_server_side_cursor(self, conn: Any) -> Any:
        """A cursor that fetches rows from the server as they are asked for (for :meth:`to_csv`).

        The default is ``conn.cursor()``, which streams with sqlite3 but buffers the whole result
        with most client/server drivers: override it (a named cursor for psycopg,
        ``pymysql.cursors.SSCursor`` for PyMySQL).
        """
        return conn.cursor()

    def quote_identifier(self, name: str) -> str:
        """``name`` quoted as an identifier; ``schema.table`` is quoted part by part."""
        if not isinstance(name, str) or not name.strip():
            raise HookError(f"invalid SQL identifier {name!r}")
        quote = self.identifier_quote
        parts = name.split(".")
        if any(not part for part in parts):
            raise HookError(f"invalid SQL identifier {name!r}")
        return ".".join(quote + part.replace(quote, quote * 2) + quote for part in parts)

    def set_autocommit(self, conn: Any, autocommit: bool) -> None:
        """Switch the driver connection's autocommit mode (PyMySQL, psycopg and sqlite3 ways)."""
        current = getattr(conn, "autocommit", None)
        if callable(current):  # PyMySQL: a method
            current(autocommit)
        elif hasattr(conn, "autocommit"):  # psycopg, sqlite3 on Python >= 3.12
            conn.autocommit = autocommit
        elif hasattr(conn, "isolation_level"):  # sqlite3 before Python 3.12
            conn.isolation_level = None if autocommit else ""
        else:
            raise HookError(f"{type(self).__name__}: the driver connection has no autocommit mode")

    def bulk_load(self, table: str, path: str | os.PathLike[str], **kwargs: Any) -> int:
        """Load a CSV file with the database's native loader; the default is :meth:`load_csv`."""
        return self.load_csv(path, table, **kwargs)

    # --- connecting ---------------------------------------------------------------------------------

    def _where(self) -> str:
        info = self.connection
        host = info.host or ""
        if host and info.port:
            host = f"{host}:{info.port}"
        return f" at {host}" if host else ""

    def _open(self) -> Any:
        try:
            return self.get_conn()
        except FluxError:
            raise
        except NotImplementedError:
            raise
        except Exception as exc:
            message = str(exc).strip() or type(exc).__name__
            from flux.connections import secrets_of

            for secret in sorted(secrets_of(self.connection), key=len, reverse=True):
                message = message.replace(secret, "***")
            raise HookError(
                f"cannot connect to {self.connection.conn_type} connection {self.conn_id!r}"
                f"{self._where()}: {' '.join(message.split())}"
            ) from None

    @contextmanager
    def _connected(self) -> Iterator[Any]:
        conn = self._open()
        try:
            yield conn
        finally:
            try:
                conn.close()
            except Exception:  # a broken connection cannot be closed twice; nothing is lost
                pass

    @staticmethod
    def _execute(cursor: Any, sql: str, parameters: Parameters) -> None:
        # Without parameters drivers in "format" style leave '%' alone, so pass none at all.
        if parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)

    @staticmethod
    def _rollback(conn: Any) -> None:
        try:
            conn.rollback()
        except Exception:  # the original error matters more than a failed rollback
            pass

    def split_sql(self, sql: str) -> list[str]:
        """The statements of a script, split the way this database reads it."""
        return split_statements(
            sql,
            backslash_escapes=self.sql_backslash_escapes,
            hash_comments=self.sql_hash_comments,
            dollar_quotes=self.sql_dollar_quotes,
        )

    # --- reading ---------------------------------------------------------------------------------

    def _query(self, sql: str, parameters: Parameters) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._connected() as conn, closing(conn.cursor()) as cursor:
            self._execute(cursor, sql, parameters)
            if cursor.description is None:
                raise HookError("the statement returned no rows to read (it is not a query)")
            names = [column[0] for column in cursor.description]
            rows = [tuple(row) for row in cursor.fetchall()]
        return names, rows

    def get_records(self, sql: str, parameters: Parameters = None) -> tuple[tuple[Any, ...], ...]:
        """Every row of a query, as a tuple of tuples."""
        return tuple(self._query(sql, parameters)[1])

    def get_first(self, sql: str, parameters: Parameters = None) -> tuple[Any, ...] | None:
        """The first row of a query as a tuple, or None when it returns no row."""
        with self._connected() as conn, closing(conn.cursor()) as cursor:
            self._execute(cursor, sql, parameters)
            if cursor.description is None:
                raise HookError("the statement returned no rows to read (it is not a query)")
            row = cursor.fetchone()
        return tuple(row) if row is not None else None

    def get_table_columns(self, table: str) -> list[str]:
        """The column names of ``table``, in table order."""
        with self._connected() as conn:
            return self._table_columns(conn, table)

    def _table_columns(self, conn: Any, table: str) -> list[str]:
        quoted = self.quote_identifier(table)
        try:
            with closing(conn.cursor()) as cursor:
                cursor.execute(f"SELECT * FROM {quoted} WHERE 1 = 0")
                columns = [column[0] for column in cursor.description]
                cursor.fetchall()
        except Exception as exc:
            reason = " ".join(str(exc).split())
            raise HookError(f"cannot read the columns of table {quoted}: {reason}") from None
        return columns

    def get_pandas_df(self, sql: str, parameters: Parameters = None) -> Any:
        """The result of a query as a ``pandas.DataFrame`` (needs the ``pandas`` extra)."""
        try:
            import pandas
        except ImportError:
            raise MissingDependencyError("pandas is not installed: pip install 'flux-core[pandas]'") from None
        names, rows = self._query(sql, parameters)
        return pandas.DataFrame.from_records(rows, columns=names)

    def get_json(self, sql: str, parameters: Parameters = None) -> str:
        """The result of a query as a JSON array of objects (one per row, keyed by column name).

        Values: dates, times and datetimes in ISO 8601; ``Decimal`` always as a string (exact);
        intervals as seconds; bytes as UTF-8 text when valid UTF-8, else base64; NaN and
        infinite floats as null. Two result columns with the same name are an error.
        """
        names, rows = self._query(sql, parameters)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise HookError(
                f"get_json: the query returns several columns named {', '.join(duplicates)}; "
                "give them distinct aliases"
            )
        records = [{name: json_value(value) for name, value in zip(names, row, strict=True)} for row in rows]
        return json.dumps(records, ensure_ascii=False)

    # --- writing ---------------------------------------------------------------------------------

    def run(
        self,
        sql: str | Sequence[str],
        parameters: Parameters = None,
        autocommit: bool = False,
    ) -> tuple[tuple[Any, ...], ...] | int:
        """Run one or more statements; return the last one's rows, or its row count.

        ``sql`` is a string (split into statements, see :func:`split_statements`) or a list of
        statements; ``parameters`` are passed to each statement. Without ``autocommit`` the
        statements form one transaction, committed at the end and rolled back if one fails.
        """
        statements = self.split_sql(sql) if isinstance(sql, str) else [s for s in sql if s.strip()]
        if not statements:
            raise HookError("run: no SQL statement given")
        with self._connected() as conn:
            if autocommit:
                self.set_autocommit(conn, True)
            try:
                with closing(conn.cursor()) as cursor:
                    for statement in statements:
                        self.log.info("Running SQL: %s", statement)
                        self._execute(cursor, statement, parameters)
                    if cursor.description is not None:
                        result: tuple[tuple[Any, ...], ...] | int = tuple(
                            tuple(row) for row in cursor.fetchall()
                        )
                    else:
                        result = cursor.rowcount
                if not autocommit:
                    conn.commit()
            except BaseException:
                if not autocommit:
                    self._rollback(conn)
                raise
        return result

    def insert_rows(
        self,
        table: str,
        rows: Iterable[Sequence[Any]],
        columns: Sequence[str] | None = None,
        batch_size: int = 10000,
    ) -> int:
        """Insert ``rows`` into ``table`` in batches, in one transaction; returns the row count."""
        with self._connected() as conn:
            try:
                targets = list(columns) if columns else self._table_columns(conn, table)
                count = self._insert(conn, table, targets, rows, batch_size)
                conn.commit()
            except BaseException:
                self._rollback(conn)
                raise
        return count

    def _insert(
        self, conn: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], batch_size: int
    ) -> int:
        if batch_size < 1:
            raise HookError(f"batch_size must be at least 1, not {batch_size}")
        names = ", ".join(self.quote_identifier(column) for column in columns)
        markers = ", ".join([self.placeholder] * len(columns))
        statement = f"INSERT INTO {self.quote_identifier(table)} ({names}) VALUES ({markers})"
        return self._execute_in_batches(conn, statement, rows, batch_size)

    @staticmethod
    def _execute_in_batches(conn: Any, statement: str, rows: Iterable[Sequence[Any]],
                            batch_size: int) -> int:
        """``executemany(statement)`` over ``rows``, ``batch_size`` at a time; returns the row count."""
        count = 0
        batch: list[Sequence[Any]] = []
        with closing(conn.cursor()) as cursor:
            for row in rows:
                batch.append(row)
                if len(batch) >= batch_size:
                    cursor.executemany(statement, batch)
                    count += len(batch)
                    batch = []
            if batch:
                cursor.executemany(statement, batch)
                count += len(batch)
        return count

    # --- files -----------------------------------------------------------------------------------

    def to_csv(
        self,
        sql: str,
        path: str | os.PathLike[str],
        parameters: Parameters = None,
        delimiter: str = ",",
        header: bool = True,
        batch_size: int = 10000,
        null_value: str = "",
    ) -> int:
        """Write the result of a query to a CSV file (UTF-8), streaming it; returns the row count.

        Rows are fetched ``batch_size`` at a time through :meth:`get_server_side_cursor`, so memory
        stays flat whatever the result size. NULL is written as ``null_value``; bytes as UTF-8 text
        when valid, else base64. The file appears only when complete (written aside, then renamed).
        """
        if batch_size < 1:
            raise HookError(f"batch_size must be at least 1, not {batch_size}")
        target = Path(path)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        count = 0
        try:
            with self._connected() as conn:
                cursor = self.get_server_side_cursor(conn)
                try:
                    self._execute(cursor, sql, parameters)
                    if cursor.description is None:
                        raise HookError("to_csv: the statement returned no rows to write (it is not a query)")
                    try:
                        handle = partial.open("w", newline="", encoding="utf-8")
                    except OSError as exc:
                        raise HookError(f"cannot write {target}: {exc.strerror or exc}") from None
                    with handle:
                        writer = csv.writer(handle, delimiter=delimiter)
                        if header:
                            writer.writerow([column[0] for column in cursor.description])
                        while True:
                            rows = cursor.fetchmany(batch_size)
                            if not rows:
                                break
                            writer.writerows(
                                [null_value if v is None else _csv_value(v) for v in row] for row in rows
                            )
                            count += len(rows)
                finally:
                    cursor.close()
            os.replace(partial, target)
        finally:
            if partial.exists():
                partial.unlink()
        return count

    def load_csv(
        self,
        path: str | os.PathLike[str],
        table: str,
        columns: Sequence[str] | None = None,
        delimiter: str = ",",
        header: bool = True,
        batch_size: int = 10000,
        null_value: str = "",
    ) -> int:
        """Insert the rows of a CSV file (UTF-8) into ``table``, all or nothing; returns the row count.

        The target columns are ``columns`` if given (a header line is then skipped), else the
        header line's names, else every column of the table in order. Names must be columns of the
        table (matched exactly, or case-insensitively when that is unambiguous); fields equal to
        ``null_value`` are loaded as NULL. Inserts go in batches of ``batch_size`` (``executemany``).
        """
        source = Path(path)
        try:
            handle = source.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise HookError(f"cannot read {source}: {exc.strerror or exc}") from None
        with handle, self._connected() as conn, large_csv_fields():
            reader = csv.reader(handle, delimiter=delimiter)
            first = next(reader, None) if header else None
            if header and first is None:
                raise HookError(f"{source} is empty: expected a header line")
            try:
                table_columns = self._table_columns(conn, table)
                if columns is not None:
                    wanted, what = list(columns), "the columns argument"
                elif first is not None:
                    wanted, what = [name.strip() for name in first], f"CSV header of {source.name}"
                else:
                    wanted, what = table_columns, "table columns"
                targets = _match_columns(wanted, table_columns, table, what)

                def rows() -> Iterator[list[Any]]:
                    for row in reader:
                        if not row:
                            continue  # a blank line
                        if len(row) != len(targets):
                            raise HookError(
                                f"{source.name}, line {reader.line_num}: {len(row)} field(s), expected "
                                f"{len(targets)} ({', '.join(targets)}); nothing was loaded"
                            )
                        yield [None if value == null_value else value for value in row]

                count = self._insert(conn, table, targets, rows(), batch_size)
                conn.commit()
            except BaseException:
                self._rollback(conn)
                raise
        return count

    # --- checks ----------------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Connect and run ``SELECT 1``: ``(True, "...")`` or ``(False, why)``."""
        try:
            self.get_first("SELECT 1")
        except Exception as exc:
            return False, str(exc)
        return True, f"connection {self.conn_id!r} works"


def _csv_value(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes_text(value)
    return value


def _match_columns(wanted: Sequence[str], table_columns: Sequence[str], table: str, what: str) -> list[str]:
    """``wanted`` mapped to the table's own spelling; a clear error for unknown or repeated names."""
    exact = set(table_columns)
    by_lower: dict[str, list[str]] = {}
    for column in table_columns:
        by_lower.setdefault(column.lower(), []).append(column)
    matched: list[str] = []
    unknown: list[str] = []
    for name in wanted:
        if name in exact:
            matched.append(name)
        elif len(by_lower.get(name.lower(), [])) == 1:
            matched.append(by_lower[name.lower()][0])
        else:
            unknown.append(name)
    if unknown:
        raise HookError(
            f"{what} does not match table {table}: no column {', '.join(map(repr, unknown))} in the "
            f"table (its columns: {', '.join(table_columns)}); nothing was loaded"
        )
    repeated = sorted({name for name in matched if matched.count(name) > 1})
    if repeated:
        raise HookError(f"{what} names column {', '.join(repeated)} more than once; nothing was loaded")
    return matched


#: The largest CSV field loads accept (the csv module's default is 128 KiB; a MySQL LONGTEXT or a
#: PostgreSQL text value can be far larger).
CSV_FIELD_LIMIT = 1 << 30


@contextmanager
def large_csv_fields() -> Iterator[None]:
    """Let :mod:`csv` read fields up to :data:`CSV_FIELD_LIMIT` while the block runs.

    The limit is process-wide, so it is raised for the load only and put back afterwards.
    """
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, CSV_FIELD_LIMIT))
    try:
        yield
    finally:
        csv.field_size_limit(previous)
