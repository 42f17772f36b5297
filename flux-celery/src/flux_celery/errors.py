"""Errors of flux-celery; all are :class:`flux.exceptions.FluxError`, shown as one line."""

from __future__ import annotations

from flux.exceptions import ExecutorError, FluxError


class CelerySetupError(ExecutorError):
    """The ``[celery]`` settings are invalid, or the broker cannot be used."""


class BrokerUnavailable(ExecutorError):
    """The Celery broker cannot be reached (the caller keeps the task instances and retries)."""


class RemoteLogError(FluxError):
    """A task log could not be fetched from the worker that wrote it."""


class UnsafeLogRequest(RemoteLogError):
    """A log request names a path outside the log folder, or carries a bad signature."""
