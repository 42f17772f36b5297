"""Core's CLI commands, one module per command or group.

Every module here that defines ``COMMANDS`` (a list of click commands) is registered by core's
built-in plugin. These modules import only click at the top: ``flux --help`` imports them all.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module
from typing import Any


def core_commands() -> list[Any]:
    """Every click command defined by the modules of this package."""
    found: list[Any] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = import_module(f"{__name__}.{module_info.name}")
        found.extend(getattr(module, "COMMANDS", []))
    return found
