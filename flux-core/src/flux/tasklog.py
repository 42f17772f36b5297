"""Task logs: one file per try, in the seed's format, with connection secrets masked as ``***``."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from datetime import datetime
from pathlib import Path

from flux.config import get_config
from flux.dates import path_component

LOG_FORMAT = "[%(asctime)s] {%(filename)s:%(lineno)d} %(levelname)s - %(message)s"
MASK = "***"
#: secrets shorter than this are not masked: masking "a" would garble every log line
MIN_SECRET_LENGTH = 3


def log_path(dag_id: str, task_id: str, execution_date: datetime, try_number: int) -> Path:
    """``$FLUX_HOME/logs/<dag_id>/<task_id>/<execution date>/<try>.log``."""
    return (get_config().log_folder / dag_id / task_id / path_component(execution_date)
            / f"{try_number}.log")


def mask(text: str, secrets: AbstractSet[str] | None = None) -> str:
    """``text`` with every known secret replaced by ``***``."""
    if secrets is None:
        secrets = known_secrets()
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH and secret in text:
            text = text.replace(secret, MASK)
    return text


def known_secrets() -> AbstractSet[str]:
    """Secrets registered by hooks that loaded a connection in this process."""
    from flux.connections import known_secrets as registered

    return registered()


class SecretsMasker(logging.Filter):
    """Rewrites each record's message (and traceback text) with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = known_secrets()
        if not secrets:
            return True
        message = record.getMessage()
        masked = mask(message, secrets)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text, secrets)
        return True


class StreamToLogger(io.TextIOBase):
    """A file-like object that sends each written line to a logger (for print() in tasks)."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger, self.level, self._buffer = logger, level, ""

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            # stacklevel 2: the record names the line that printed, not this class
            self.logger.log(self.level, line, stacklevel=2)
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            self.logger.log(self.level, self._buffer)
            self._buffer = ""

    def isatty(self) -> bool:
        return False


def make_handler(target: Path | None) -> logging.Handler:
    """A handler writing the task-log format to ``target`` (or to stdout when None)."""
    if target is None:
        handler: logging.Handler = logging.StreamHandler(sys.__stdout__)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(SecretsMasker())
    return handler


@contextlib.contextmanager
def capture(handler: logging.Handler) -> Iterator[logging.Logger]:
    """Send the task's logging and its stdout/stderr to ``handler`` while the block runs."""
    root = logging.getLogger()
    task_logger = logging.getLogger("flux.task")
    flux_logger = logging.getLogger("flux")
    level = configured_level()
    previous_level = flux_logger.level
    # setLevel empties every logger's level cache: only when the level really has to change
    lowered = not previous_level or previous_level > level
    if lowered:
        flux_logger.setLevel(level)
    root.addHandler(handler)
    out, err = StreamToLogger(task_logger, logging.INFO), StreamToLogger(task_logger, logging.WARNING)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):  # type: ignore[type-var]
            yield task_logger
    finally:
        out.flush()
        err.flush()
        root.removeHandler(handler)
        handler.close()
        if lowered:
            flux_logger.setLevel(previous_level)


def configured_level() -> int:
    """``[logging] level`` as a number (INFO unless configured)."""
    return logging.getLevelName(str(get_config().get("logging", "level", "INFO")).upper())
