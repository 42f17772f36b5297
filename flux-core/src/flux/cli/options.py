"""Options and helpers shared by several commands (one definition each)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

F = Callable[..., Any]


class DateParam(click.ParamType):
    """A ``YYYY-MM-DD`` or ISO datetime, as an aware UTC datetime."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        from flux.dates import parse_date
        from flux.exceptions import InvalidDateError

        try:
            return parse_date(str(value))
        except InvalidDateError as exc:
            self.fail(str(exc), param, ctx)


DATE = DateParam()


def subdir_option(func: F) -> F:
    """``-sd/--subdir``: a DAG file or folder instead of the configured DAG folder."""
    return click.option(
        "-sd", "--subdir", "subdir", default=None, metavar="PATH",
        help="File location or directory from which to look for the dag.",
    )(func)


def alias(command: click.Command, name: str, note: str | None = None) -> click.Command:
    """The same command under another name (``master`` for ``scheduler``, ``initdb``...)."""
    import copy

    other = copy.copy(command)
    other.name = name
    if note:
        other.short_help = note
    return other
