"""``MySqlHook``: MySQL and MariaDB through PyMySQL.

Everything the seed lists as common methods comes from :class:`flux.hooks.dbapi.DbApiHook`
(``get_records``, ``get_first``, ``run``, ``to_csv``, ``load_csv``, ``get_pandas_df``,
``get_json``); this class says how to connect, streams ``to_csv`` through an unbuffered cursor, and
loads CSV files with ``LOAD DATA LOCAL INFILE`` when the connection allows it.

PyMySQL is imported inside the methods: this module is imported whenever Flux lists its plugins.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from contextlib import closing
from typing import Any, ClassVar

from flux.exceptions import HookError, MissingDependencyError
from flux.hooks.dbapi import DbApiHook, Parameters, large_csv_fields

#: How :meth:`MySqlHook.insert_rows` (and the transfers) treat a row whose key already exists.
ON_DUPLICATE = ("error", "replace", "ignore")

#: Connection ``extra`` keys this hook reads; others are left alone (and mentioned in the log).
KNOWN_EXTRA = frozenset({
    "charset", "connect_timeout", "read_timeout", "write_timeout", "local_infile", "init_command",
    "unix_socket", "ssl", "ssl_ca", "ssl_cert", "ssl_key", "ssl_key_password", "ssl_verify_cert",
    "ssl_verify_identity", "ssl_disabled", "description",
})
_SSL_KEYS = ("ca", "cert", "key", "key_password", "verify_cert", "verify_identity", "disabled")
_SSL_BOOLEANS = frozenset({"verify_cert", "verify_identity", "disabled"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

DEFAULT_CHARSET = "utf8mb4"
DEFAULT_CONNECT_TIMEOUT = 10.0
#: the server's answer to KILL QUERY for a thread that has ended ("Unknown thread id")
ER_NO_SUCH_THREAD = 1094
#: the largest CSV field load_csv reads: 1 GiB, MySQL's largest packet


class MySqlHook(DbApiHook):
    """A MySQL or MariaDB database, named by a connection of type ``mysql``.

    ``MySqlHook(mysql_dbid="local_mysql")`` (or ``conn_id=``); ``database=`` overrides the
    connection's schema. The connection's ``extra`` may hold:

    * ``charset`` (default ``utf8mb4``, so emoji and every other character round-trip);
    * ``connect_timeout``, ``read_timeout``, ``write_timeout`` in seconds;
    * ``local_infile`` (true/false): let :meth:`load_csv` use ``LOAD DATA LOCAL INFILE``;
    * ``ssl_ca``, ``ssl_cert``, ``ssl_key``, ``ssl_key_password``, ``ssl_verify_cert``,
      ``ssl_verify_identity``, ``ssl_disabled`` (or the same keys without ``ssl_`` inside an
      ``ssl`` object): TLS settings; any of the first five makes TLS required;
    * ``init_command`` (SQL run on every new connection), ``unix_socket``.
    """

    conn_type: ClassVar[str] = "mysql"
    conn_name_attr: ClassVar[str] = "mysql_dbid"
    default_conn_id: ClassVar[str | None] = "mysql_default"
    hook_name: ClassVar[str] = "MySQL / MariaDB"

    placeholder: ClassVar[str] = "%s"
    identifier_quote: ClassVar[str] = "`"
    sql_backslash_escapes: ClassVar[bool] = True
    sql_hash_comments: ClassVar[bool] = True
    sql_dollar_quotes: ClassVar[bool] = False

    def __init__(self, conn_id: str | None = None, *, database: str | None = None, **kwargs: Any) -> None:
        super().__init__(conn_id, **kwargs)
        self.database = database
        #: the server's thread ids of the connections this hook opened (for :meth:`kill_queries`)
        self.server_threads: list[int] = []

    # --- connecting ------------------------------------------------------------------------------

    def connect_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``pymysql.connect`` for this hook's connection."""
        info = self.connection
        if info.conn_type != self.conn_type:
            raise HookError(
                f"connection {self.conn_id!r} has type {info.conn_type!r}; MySqlHook needs a "
                "connection of type 'mysql'"
            )
        extra = info.extra or {}
        unknown = sorted(set(extra) - KNOWN_EXTRA)
        if unknown:
            self.log.warning("Connection %r: extra key(s) %s are not used by MySqlHook",
                             self.conn_id, ", ".join(unknown))
        kwargs: dict[str, Any] = {
            "host": info.host or "localhost",
            "port": info.port or 3306,
            "user": info.login or "",
            "password": info.password or "",
            "charset": str(extra.get("charset") or DEFAULT_CHARSET),
            "connect_timeout": self._seconds(extra, "connect_timeout", DEFAULT_CONNECT_TIMEOUT),
            "local_infile": self.local_infile_requested,
        }
        database = self.database or info.schema
        if database:
            kwargs["database"] = database
        for key in ("read_timeout", "write_timeout"):
            if extra.get(key) not in (None, ""):
                kwargs[key] = self._seconds(extra, key, None)
        for key in ("init_command", "unix_socket"):
            if extra.get(key):
                kwargs[key] = str(extra[key])
        kwargs.update(self._ssl_kwargs(extra))
        return kwargs

    @property
    def local_infile_requested(self) -> bool:
        """Whether the connection's ``extra`` turns ``local_infile`` on."""
        return self._flag(self.connection.extra or {}, "local_infile")

    def _ssl_kwargs(self, extra: dict[str, Any]) -> dict[str, Any]:
        nested = extra.get("ssl")
        if nested is not None and not isinstance(nested, dict):
            raise HookError(f"connection {self.conn_id!r}: extra 'ssl' must be an object such as "
                            '{"ca": "/path/ca.pem"}')
        found: dict[str, Any] = {}
        for key in _SSL_KEYS:
            for source, name in ((nested or {}, key), (extra, f"ssl_{key}")):
                if source.get(name) in (None, ""):
                    continue
                value = self._flag(source, name) if key in _SSL_BOOLEANS else str(source[name])
                found[f"ssl_{key}"] = value
        return found

    def _flag(self, extra: dict[str, Any], key: str) -> bool:
        value = extra.get(key)
        if isinstance(value, bool):
            return value
        if value is None:
            return False
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise HookError(f"connection {self.conn_id!r}: extra {key!r} must be true or false, not {value!r}")

    def _seconds(self, extra: dict[str, Any], key: str, default: float | None) -> Any:
        value = extra.get(key)
        if value in (None, ""):
            return default
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = -1.0
        if not 0 < seconds <= 31536000:
            raise HookError(f"connection {self.conn_id!r}: extra {key!r} must be a number of seconds "
                            f"greater than 0, not {value!r}")
        # PyMySQL wants whole seconds for the read and write timeouts.
        return seconds if key == "connect_timeout" else max(1, round(seconds))

    def get_conn(self) -> Any:
        """A new PyMySQL connection (autocommit off); failures become :class:`HookError`."""
        import pymysql

        conn = pymysql.connect(**self.connect_kwargs())
        self.server_threads.append(conn.thread_id())
        return conn

    def kill_queries(self) -> None:
        """Stop, on the server, whatever this hook's connections are still running there.

        A stopped task (timeout, kill) leaves its statement running on the server otherwise: the
        client only stops waiting for it. This sends ``KILL QUERY`` for each of them from a new
        connection; connections that ended meanwhile are skipped.
        """
        import pymysql

        threads, self.server_threads = self.server_threads, []
        if not threads:
            return
        conn = pymysql.connect(**self.connect_kwargs())
        try:
            with conn.cursor() as cursor:
                for thread in threads:
                    try:
                        cursor.execute(f"KILL QUERY {int(thread)}")
                        self.log.info("Stopped the statement of server thread %d", thread)
                    except pymysql.err.OperationalError as exc:
                        if exc.args and exc.args[0] == ER_NO_SUCH_THREAD:
                            continue
                        raise
        finally:
            conn.close()

    def get_server_side_cursor(self, conn: Any) -> Any:
        """An unbuffered cursor (``SSCursor``): rows come from the server as they are fetched."""
        import pymysql.cursors

        return conn.cursor(pymysql.cursors.SSCursor)

    # --- reading ---------------------------------------------------------------------------------

    def get_pandas_df(self, sql: str, parameters: Parameters = None) -> Any:
        """The result of a query as a ``pandas.DataFrame`` (needs ``flux-mysql[pandas]``)."""
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise MissingDependencyError(
                "get_pandas_df needs pandas, which is not installed: pip install 'flux-mysql[pandas]'"
            ) from None
        return super().get_pandas_df(sql, parameters)

    # --- writing ---------------------------------------------------------------------------------

    def insert_rows(
        self,
        table: str,
        rows: Iterable[Sequence[Any]],
        columns: Sequence[str] | None = None,
        batch_size: int = 10000,
        on_duplicate: str = "error",
    ) -> int:
        """Insert ``rows`` in batches, in one transaction; returns how many rows were sent.

        ``on_duplicate`` says what a row whose primary or unique key exists already does:
        ``"error"`` fails (and nothing is inserted), ``"replace"`` replaces the old row
        (``REPLACE INTO``), ``"ignore"`` keeps the old row. Other errors (a value too long, a
        NULL in a NOT NULL column) fail in every mode.
        """
        check_on_duplicate(on_duplicate)
        with self._connected() as conn:
            try:
                targets = list(columns) if columns else self._table_columns(conn, table)
                count = self._insert(conn, table, targets, rows, batch_size, on_duplicate=on_duplicate)
                conn.commit()
            except BaseException:
                self._rollback(conn)
                raise
        return count

    def insert_statement(self, table: str, columns: Sequence[str], on_duplicate: str = "error") -> str:
        """The parameterised INSERT (or REPLACE) statement for one row of ``columns``."""
        check_on_duplicate(on_duplicate)
        if not columns:
            raise HookError(f"no columns to insert into {self.quote_identifier(table)}")
        names = ", ".join(self.quote_identifier(column) for column in columns)
        markers = ", ".join([self.placeholder] * len(columns))
        verb = "REPLACE" if on_duplicate == "replace" else "INSERT"
        statement = f"{verb} INTO {self.quote_identifier(table)} ({names}) VALUES ({markers})"
        if on_duplicate == "ignore":
            # Not INSERT IGNORE: that also turns a too-long value into a silently truncated one.
            first = self.quote_identifier(columns[0])
            statement += f" ON DUPLICATE KEY UPDATE {first} = {first}"
        return statement

    def _insert(
        self,
        conn: Any,
        table: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        batch_size: int,
        on_duplicate: str = "error",
    ) -> int:
        # PyMySQL turns executemany() of an INSERT ... VALUES into multi-row INSERTs of ~1 MB.
        if batch_size < 1:
            raise HookError(f"batch_size must be at least 1, not {batch_size}")
        statement = self.insert_statement(table, columns, on_duplicate)
        return self._execute_in_batches(conn, statement, rows, batch_size)

    # --- files -----------------------------------------------------------------------------------

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
        """Insert the rows of a CSV file into ``table``, all or nothing; returns the row count.

        With ``local_infile`` true in the connection's extra, and the server's ``local_infile``
        on, the rows are streamed to the server with ``LOAD DATA LOCAL INFILE`` (much faster);
        otherwise they go in batched INSERTs. Both read the file the same way, and fail the same
        way on a row with the wrong number of fields, a value that does not fit or a duplicate key
        (see :meth:`flux.hooks.dbapi.DbApiHook.load_csv` for the rules).
        """
        with large_csv_fields():
            return self._load_csv(path, table, columns, delimiter, header, batch_size, null_value)

    def _load_csv(self, path: str | os.PathLike[str], table: str, columns: Sequence[str] | None,
                  delimiter: str, header: bool, batch_size: int, null_value: str) -> int:
        if self.local_infile_requested:
            from flux_mysql.loaddata import load_csv_local_infile

            with self._connected() as conn:
                if _server_allows_local_infile(conn):
                    try:
                        count = load_csv_local_infile(self, conn, path, table, columns, delimiter,
                                                      header, null_value)
                        conn.commit()
                    except BaseException:
                        self._rollback(conn)
                        raise
                    return count
            self.log.warning(
                "Connection %r asks for local_infile, but the server has local_infile=OFF: "
                "loading with batched INSERTs instead", self.conn_id)
        return super().load_csv(path, table, columns=columns, delimiter=delimiter, header=header,
                                batch_size=batch_size, null_value=null_value)


def check_on_duplicate(on_duplicate: str) -> None:
    """Raise :class:`HookError` unless ``on_duplicate`` is one of :data:`ON_DUPLICATE`."""
    if on_duplicate not in ON_DUPLICATE:
        raise HookError(f"on_duplicate must be one of {', '.join(map(repr, ON_DUPLICATE))}, "
                        f"not {on_duplicate!r}")


def _server_allows_local_infile(conn: Any) -> bool:
    with closing(conn.cursor()) as cursor:
        cursor.execute("SELECT @@GLOBAL.local_infile")
        row = cursor.fetchone()
    return bool(row and row[0])
