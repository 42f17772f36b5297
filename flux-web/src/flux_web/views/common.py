"""Helpers shared by the views: reading request arguments (400 with the reason), finding DAGs (404)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import abort, g

from flux.dates import parse_date
from flux.exceptions import InvalidDateError
from flux_web.dagcache import get_cache

if TYPE_CHECKING:
    from flux.dag import DAG
    from flux_web.queries import DagSummary


def user_name() -> str:
    """The signed-in user's name (what the audit log records)."""
    user = getattr(g, "user", None)
    return user.username if user is not None else "?"


def is_admin() -> bool:
    user = getattr(g, "user", None)
    return bool(user is not None and user.is_admin)


def parse_date_value(value: str, name: str = "execution_date") -> datetime:
    """A date from a URL or form; 400 with the reason when it is not one."""
    try:
        return parse_date(value)
    except InvalidDateError as exc:
        abort(400, description=f"{name}: {exc}")


def date_arg(args: Any, name: str, default: datetime | None = None) -> datetime | None:
    """An optional date argument."""
    value = args.get(name)
    if value is None or value == "":
        return default
    return parse_date_value(value, name)


def int_arg(args: Any, name: str, default: int, low: int, high: int) -> int:
    """An integer argument within ``[low, high]``; 400 otherwise."""
    value = args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        abort(400, description=f"{name}: expected a whole number, got {value!r}")
    if not low <= number <= high:
        abort(400, description=f"{name}: expected a number from {low} to {high}, got {number}")
    return number


def bool_arg(args: Any, name: str) -> bool:
    return str(args.get(name, "")).lower() in ("1", "true", "on", "yes")


def find_dag(dag_id: str) -> tuple[DagSummary, DAG]:
    """The DAG's row and its object (imported from its file); 404 if either is missing."""
    from flux.db import session_scope
    from flux_web.queries import dag_summary

    with session_scope() as session:
        summary = dag_summary(session, dag_id)
    return summary, get_cache().dag(dag_id, summary.fileloc)
