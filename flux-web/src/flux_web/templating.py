"""Template helpers: dates, durations, state colours, and what every page's layout needs."""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import Flask, current_app, g, request

from flux.dates import as_utc, path_component

_CLASS_SAFE = re.compile(r"[^a-z0-9_]")


def state_class(state: str | None) -> str:
    """The CSS class of a state (``s-none`` for no state); only known states get a class."""
    from flux.state import State

    if state is None:
        return "s-none"
    if state in State.COLORS:
        return "s-" + _CLASS_SAFE.sub("_", state)
    return "s-unknown"


def state_css() -> str:
    """One CSS rule per state, from ``State.COLORS`` (the colours the CLI uses too)."""
    from flux.state import State

    rules = [f".{state_class(state)}{{background:{color}}}" for state, color in State.COLORS.items()]
    rules.append(".s-unknown{background:#000}")
    return "\n".join(rules)


def when(value: datetime | None) -> str:
    """``2024-01-01 00:00:00`` (UTC), or an empty string."""
    if value is None:
        return ""
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[union-attr]


def url_date(value: datetime) -> str:
    """An execution date as it appears in URLs: ``2024-01-01T00:00:00`` (UTC implied)."""
    return path_component(value)


def duration(seconds: float | None) -> str:
    """``1h 02m 03s``, ``4.20s``, or an empty string."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"


@functools.lru_cache(maxsize=4096)
def quoted_date(value: datetime) -> str:
    """An execution date as a URL path segment."""
    return quote(url_date(value), safe=":")


def ti_url_prefix(dag_id: str, task_id: str) -> str:
    """The task instance page's URL without its date (the tree view adds thousands of dates)."""
    # Quoted to URL-safe characters only, so the result is also safe inside an HTML attribute.
    return f"{request.script_root}/dags/{quote(dag_id, safe='')}/tasks/{quote(task_id, safe='')}/"


def ti_url(dag_id: str, task_id: str, execution_date: datetime) -> str:
    """The task instance page."""
    return ti_url_prefix(dag_id, task_id) + quoted_date(execution_date)


def dag_file(path: str | None) -> str:
    """A DAG file's path relative to the DAG folder when it is inside it (shorter, and it does not
    show where the installation lives)."""
    import os

    from flux.config import get_config

    if not path:
        return ""
    folder = str(get_config().dags_folder).rstrip(os.sep) + os.sep
    return path[len(folder):] if path.startswith(folder) else path


def install(app: Flask, state: Any) -> None:
    """Register the filters and the layout's context."""
    css = state_css()
    app.jinja_env.filters.update(
        when=when, url_date=url_date, duration=duration, state_class=state_class, dag_file=dag_file,
    )
    app.jinja_env.globals.update(ti_url=ti_url, STATES=[s for s in state.ALL if s is not None])

    @app.context_processor
    def layout() -> dict[str, Any]:
        return {
            "current_user": getattr(g, "user", None),
            "menu": current_app.config.get("FLUX_MENU", []),
            "state_css": css,
        }
