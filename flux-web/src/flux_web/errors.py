"""Errors of the web plugin (each a :class:`flux.exceptions.FluxError`: one clear line, no traceback)."""

from __future__ import annotations

from flux.exceptions import FluxError


class UserError(FluxError):
    """A user account cannot be created, changed or found as asked."""


class UserExists(UserError):
    """A user with this name already exists."""


class UserNotFound(UserError):
    """No user has this name."""


class UnsafeLogPath(FluxError):
    """A log was asked for with a path that would leave the log folder (``..``, absolute paths)."""


class ActionConflict(FluxError):
    """An action lost a race: what it was to change changed first (reload and try again)."""


class WebserverError(FluxError):
    """The web server cannot start (the port is taken, the address is not this machine's...)."""
