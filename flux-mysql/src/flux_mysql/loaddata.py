"""Loading a CSV file with ``LOAD DATA LOCAL INFILE``, streamed through a named pipe.

The CSV file is not handed to the server as it is: MySQL's reading of CSV differs from Python's
(an unquoted ``NULL`` becomes NULL, quoting rules, line ends), and a row with a wrong number of
fields would only give a warning. Instead a thread reads the file with :mod:`csv`, exactly as
the batched-INSERT path does, and writes each row in the server's own unambiguous format
(tab-separated, backslash escapes, ``\\N`` for NULL) into a named pipe that PyMySQL sends to the
server. Nothing is held in memory and no second copy of the file is written to disk.

With ``LOCAL`` the server turns errors (duplicate keys, values too long, bad numbers) into
warnings and goes on, so the warnings are read afterwards and any of them fails the load; the
caller then rolls the transaction back, so nothing is loaded.
"""

from __future__ import annotations

import csv
import errno
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flux.exceptions import HookError
from flux.hooks.dbapi import _match_columns

if TYPE_CHECKING:
    from flux_mysql.hooks import MySqlHook

log = logging.getLogger("flux.hooks.MySqlHook")

#: characters that must be escaped in LOAD DATA's default format
_SPECIAL = re.compile(r"[\\\n\r\x00]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\\0"})
_NULL = "\\N"
#: bytes written to the pipe at a time
_CHUNK = 256 * 1024


def encode_rows(rows: Iterator[list[str | None]]) -> Iterator[bytes]:
    """Rows of text (``None`` for NULL) as chunks of LOAD DATA's default format, UTF-8 encoded."""
    lines: list[str] = []
    size = 0
    for row in rows:
        if None in row:
            line = "\t".join(_NULL if value is None else value.translate(_ESCAPES) for value in row)
        else:
            line = "\t".join(row)  # type: ignore[arg-type]
            # Most rows need no escaping: check the joined line once instead of every field.
            if line.count("\t") != len(row) - 1 or _SPECIAL.search(line):
                line = "\t".join(value.translate(_ESCAPES) for value in row)  # type: ignore[union-attr]
        lines.append(line)
        size += len(line) + 1
        if size >= _CHUNK:
            lines.append("")
            yield "\n".join(lines).encode("utf-8")
            lines, size = [], 0
    if lines:
        lines.append("")
        yield "\n".join(lines).encode("utf-8")


class _PipeWriter(threading.Thread):
    """Writes the encoded rows into the named pipe while the server reads from it."""

    def __init__(self, fifo: str, chunks: Iterator[bytes]) -> None:
        super().__init__(name="flux-load-data", daemon=True)
        self.fifo = fifo
        self.chunks = chunks
        self.error: BaseException | None = None
        self.opened = threading.Event()
        self.cancelled = False

    def run(self) -> None:
        try:
            # Blocks until the reader (PyMySQL, or release() below) opens the pipe.
            with open(self.fifo, "wb") as out:
                self.opened.set()
                for chunk in self.chunks:
                    if self.cancelled:
                        return
                    out.write(chunk)
        except BrokenPipeError:
            pass  # the reader went away: the statement failed, and the caller reports why
        except BaseException as exc:  # reported by the caller, in its own thread
            self.error = exc
        finally:
            self.opened.set()

    def release(self) -> None:
        """Stop writing: unblock a writer still waiting for a reader, and let it end."""
        self.cancelled = True
        if not self.opened.is_set():
            try:
                fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
            else:
                self.opened.wait(5)
                os.close(fd)
        self.join()


def load_csv_local_infile(
    hook: MySqlHook,
    conn: Any,
    path: str | os.PathLike[str],
    table: str,
    columns: Sequence[str] | None,
    delimiter: str,
    header: bool,
    null_value: str,
) -> int:
    """Load ``path`` into ``table`` on the open connection ``conn``; returns the row count.

    Same arguments and rules as :meth:`MySqlHook.load_csv`; the caller commits or rolls back.
    """
    if not hasattr(os, "mkfifo"):
        raise HookError("LOAD DATA LOCAL INFILE streaming needs named pipes (POSIX)")
    source = Path(path)
    try:
        handle = source.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise HookError(f"cannot read {source}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle, delimiter=delimiter)
        first = next(reader, None) if header else None
        if header and first is None:
            raise HookError(f"{source} is empty: expected a header line")
        table_columns = hook._table_columns(conn, table)
        if columns is not None:
            wanted, what = list(columns), "the columns argument"
        elif first is not None:
            wanted, what = [name.strip() for name in first], f"CSV header of {source.name}"
        else:
            wanted, what = table_columns, "table columns"
        targets = _match_columns(wanted, table_columns, table, what)
        counter = [0]

        def rows() -> Iterator[list[str | None]]:
            expected = len(targets)
            for row in reader:
                if not row:
                    continue  # a blank line
                if len(row) != expected:
                    raise HookError(
                        f"{source.name}, line {reader.line_num}: {len(row)} field(s), expected "
                        f"{expected} ({', '.join(targets)}); nothing was loaded"
                    )
                counter[0] += 1
                if null_value in row:
                    yield [None if value == null_value else value for value in row]
                else:
                    yield row  # type: ignore[misc]

        folder = tempfile.mkdtemp(prefix="flux-load-")
        fifo = os.path.join(folder, "rows.tsv")
        try:
            os.mkfifo(fifo, 0o600)
            writer = _PipeWriter(fifo, encode_rows(rows()))
            writer.start()
            names = ", ".join(hook.quote_identifier(column) for column in targets)
            statement = (f"LOAD DATA LOCAL INFILE %s INTO TABLE {hook.quote_identifier(table)} "
                         f"CHARACTER SET utf8mb4 ({names})")
            log.info("Loading %s into %s with LOAD DATA LOCAL INFILE", source, hook.quote_identifier(table))
            try:
                with closing(conn.cursor()) as cursor:
                    cursor.execute(statement, (fifo,))
            finally:
                writer.release()
            if writer.error is not None:
                raise writer.error
            raise_on_warnings(conn, f"LOAD DATA LOCAL INFILE of {source.name} into {table}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return counter[0]


def raise_on_warnings(conn: Any, what: str) -> None:
    """Raise the driver's error for the first warning of the last statement, if there is one.

    ``LOCAL`` loads report as warnings what INSERTs report as errors; raising the same error
    class (``IntegrityError`` for a duplicate key, ``DataError`` for a value too long...) makes
    both paths fail alike.
    """
    from pymysql import err

    problems = [w for w in conn.show_warnings() or () if str(w[0]).lower() in ("warning", "error")]
    if not problems:
        return
    _level, code, message = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    fallback = err.InternalError if int(code) < 1000 else err.OperationalError
    error_class = err.error_map.get(int(code), fallback)
    raise error_class(int(code), f"{message}{more}; {what} was rolled back, nothing was loaded")
