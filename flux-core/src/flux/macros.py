"""``macros`` in templates: date helpers, plus every namespace plugins register via ``flux_macros``."""

from __future__ import annotations

import datetime as _datetime
import random as _random
import time
import uuid
from types import SimpleNamespace
from typing import Any

from flux.dates import UTC

timedelta = _datetime.timedelta


class datetime(_datetime.datetime):  # noqa: N801 - it stands for the datetime class in templates
    """``datetime`` whose ``now()`` is aware UTC, so it can be compared with execution dates."""

    @classmethod
    def now(cls, tz: _datetime.tzinfo | None = None) -> datetime:  # type: ignore[override]
        return super().now(tz or UTC)


def random() -> float:
    """A random float in [0, 1)."""
    return _random.random()


def ds_add(ds: str, days: int) -> str:
    """Add ``days`` (may be negative) to a ``YYYY-MM-DD`` date: ``ds_add('2015-01-01', 5)``."""
    value = _datetime.datetime.strptime(ds, "%Y-%m-%d") + _datetime.timedelta(days=days)
    return value.strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Reformat a date string: ``ds_format('2015-01-05', '%Y-%m-%d', '%m-%d-%y')``."""
    return _datetime.datetime.strptime(ds, input_format).strftime(output_format)


#: (the plugin registry it was built from, the namespace); rebuilt when plugins change
_namespaces: dict[str, tuple[object, SimpleNamespace]] = {}


def build_namespace(extra: dict[str, Any] | None = None) -> SimpleNamespace:
    """The ``macros`` object of a template context: core helpers, plugin namespaces, ``extra``."""
    from flux.plugins import get_plugin_manager

    manager = get_plugin_manager()
    registry = getattr(manager, "_registry", None)
    cached = _namespaces.get("current")
    if not extra and cached is not None and cached[0] is registry:
        return cached[1]
    namespace = SimpleNamespace(
        datetime=datetime, timedelta=timedelta, random=random, uuid=uuid, time=time,
        ds_add=ds_add, ds_format=ds_format,
    )
    for name, value in manager.macros().items():
        setattr(namespace, name, value)
    for name, value in (extra or {}).items():
        setattr(namespace, name, value)
    if not extra:
        _namespaces["current"] = (registry, namespace)
    return namespace
