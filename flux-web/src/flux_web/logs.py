"""Reading task logs for the web: only files inside the log folder, only as much as asked.

A try that ran on another machine (a Celery worker) has no file here: its log is asked of the
plugins (``flux_remote_task_log``), so the web never needs to know how workers serve their logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flux.config import get_config
from flux.tasklog import log_path, mask
from flux_web.errors import UnsafeLogPath

#: the most one response carries (a page shows the end of a bigger log and says so)
CHUNK_BYTES = 1024 * 1024


@dataclass
class LogChunk:
    """Part of a log file: ``text`` from byte ``offset`` to ``next_offset``."""

    text: str
    offset: int
    next_offset: int
    size: int
    exists: bool
    truncated_start: bool = False


def _complete_utf8(data: bytes) -> bytes:
    """``data`` without an incomplete UTF-8 sequence at its end (the next read returns it whole)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: look further back for the sequence's start
            continue
        if byte >= 0xC0:
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            if needed > back:
                return data[:-back]
        return data
    return data


def _check_component(name: str, value: str) -> None:
    if (not value or value in (".", "..") or "/" in value or "\\" in value or "\x00" in value
            or os.path.isabs(value)):
        raise UnsafeLogPath(f"refusing to read a log: {name} {value!r} is not a plain name")


def safe_log_path(dag_id: str, task_id: str, execution_date: datetime, try_number: int) -> Path:
    """The log file of one try (symbolic links resolved), guaranteed to be inside the log folder.

    :class:`UnsafeLogPath` for ids that are paths (``..``, ``/``, absolute) or a file that resolves
    outside the log folder (a symbolic link pointing elsewhere).
    """
    _check_component("dag_id", dag_id)
    _check_component("task_id", task_id)
    if try_number < 1:
        raise UnsafeLogPath(f"refusing to read a log: try number {try_number} is not 1 or more")
    folder = get_config().log_folder.resolve()
    resolved = log_path(dag_id, task_id, execution_date, try_number).resolve()
    if not resolved.is_relative_to(folder):
        raise UnsafeLogPath("refusing to read a log outside the log folder")
    return resolved


def _remote_log(ti: Any, try_number: int, offset: int | None) -> LogChunk | None:
    """The try's log as a plugin fetched it from the machine that ran it, or None."""
    from flux.plugins import get_plugin_manager

    start = max(0, offset or 0)  # a remote log is read from its start: its size is not known here
    found = get_plugin_manager().remote_task_log(ti, try_number, start)
    if found is None:
        return None
    next_offset = max(start, found.next_offset)
    return LogChunk(mask(found.text), start, next_offset, next_offset, exists=True)


def read_log(dag_id: str, task_id: str, execution_date: datetime, try_number: int,
             offset: int | None = None, limit: int = CHUNK_BYTES, ti: Any = None) -> LogChunk:
    """A try's log from byte ``offset`` (None: the last ``limit`` bytes), secrets masked.

    With the task instance ``ti``, a log not in the local log folder is asked of the plugins (the
    try may have run on another machine).
    """
    path = safe_log_path(dag_id, task_id, execution_date, try_number)
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        remote = _remote_log(ti, try_number, offset) if ti is not None else None
        return remote or LogChunk("", 0, 0, 0, exists=False)
    with handle:
        size = os.fstat(handle.fileno()).st_size
        truncated = False
        if offset is None:
            offset = max(0, size - limit)
            truncated = offset > 0
        offset = min(max(0, offset), size)
        handle.seek(offset)
        data = handle.read(limit)
    if truncated:  # start at a line boundary, not in the middle of a line or a UTF-8 sequence
        newline = data.find(b"\n")
        if newline >= 0:
            data, offset = data[newline + 1:], offset + newline + 1
    data = _complete_utf8(data)  # a file being written may end inside a character
    text = mask(data.decode("utf-8", errors="replace"))
    return LogChunk(text, offset, offset + len(data), size, exists=True, truncated_start=truncated)
