"""The ``[celery]`` section of the configuration, read once, with defaults and checks.

Every key may be set in ``flux.toml`` or overridden by ``FLUX__CELERY__<KEY>`` like any setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flux_celery.errors import CelerySetupError

DEFAULTS: dict[str, Any] = {
    #: where task messages go: Redis (``redis://host:6379/0``) or RabbitMQ (``amqp://user:pw@host//``)
    "broker_url": "redis://127.0.0.1:6379/0",
    #: where workers store each message's outcome (the executor reads them in bulk)
    "result_backend": "redis://127.0.0.1:6379/0",
    #: the queue of tasks whose operator names none (``queue=`` argument)
    "default_queue": "default",
    #: task instances a ``flux worker`` runs at once (``-c``)
    "worker_concurrency": 4,
    #: port of the worker's log server (0: no log server)
    "worker_log_server_port": 8793,
    #: seconds a signed log request stays valid (allow for clock differences between machines)
    "log_token_max_age": 60,
    #: Redis broker: seconds before an unacknowledged message is given to another worker; must
    #: exceed the longest task (a copy delivered earlier waits for the first one, holding a slot)
    "visibility_timeout": 3600,
    #: seconds a sent task instance may wait in the broker before its try counts as failed
    "queued_timeout": 600.0,
    #: seconds between the executor's checks of its task instances in the metadata database
    "sync_interval": 5.0,
    #: seconds to wait for the broker when connecting or sending
    "broker_timeout": 5.0,
}


@dataclass(frozen=True)
class CelerySettings:
    """The ``[celery]`` settings in force."""

    broker_url: str
    result_backend: str
    default_queue: str
    worker_concurrency: int
    worker_log_server_port: int
    log_token_max_age: int
    visibility_timeout: int
    queued_timeout: float
    sync_interval: float
    broker_timeout: float

    @classmethod
    def from_config(cls) -> CelerySettings:
        """Read ``[celery]`` from the configuration (environment overrides included)."""
        from flux.config import get_config

        section = get_config().section("celery")
        unknown = sorted(set(section) - set(DEFAULTS))
        if unknown:
            raise CelerySetupError(f"unknown setting [celery] {unknown[0]} "
                                   f"(known: {', '.join(sorted(DEFAULTS))})")
        values: dict[str, Any] = {}
        for key, default in DEFAULTS.items():
            raw = section.get(key, default)
            try:
                values[key] = type(default)(raw)
            except (TypeError, ValueError):
                raise CelerySetupError(f"[celery] {key}: expected {type(default).__name__}, "
                                       f"got {raw!r}") from None
        for key in ("broker_url", "result_backend", "default_queue"):
            if not values[key].strip():
                raise CelerySetupError(f"[celery] {key} must not be empty")
        for key in ("worker_concurrency", "log_token_max_age", "visibility_timeout"):
            if values[key] < 1:
                raise CelerySetupError(f"[celery] {key} must be at least 1, got {values[key]}")
        for key in ("queued_timeout", "sync_interval", "broker_timeout"):
            if values[key] <= 0:
                raise CelerySetupError(f"[celery] {key} must be more than 0, got {values[key]}")
        _check_schemes(values["broker_url"], values["result_backend"])
        if not 0 <= values["worker_log_server_port"] <= 65535:
            raise CelerySetupError("[celery] worker_log_server_port must be 0 (off) or a port "
                                   f"number, got {values['worker_log_server_port']}")
        return cls(**values)


def _check_schemes(broker_url: str, result_backend: str) -> None:
    from celery.app.backends import BACKEND_ALIASES
    from kombu.transport import TRANSPORT_ALIASES

    scheme = broker_url.partition("://")[0] if "://" in broker_url else ""
    if scheme not in TRANSPORT_ALIASES:
        raise CelerySetupError(f"[celery] broker_url {redact(broker_url)!r}: unknown broker kind "
                               f"{scheme!r} (use redis://host:6379/0 or amqp://user:pw@host//)")
    scheme = result_backend.partition("://")[0] if "://" in result_backend else ""
    if scheme.split("+", 1)[0] not in BACKEND_ALIASES:
        raise CelerySetupError(f"[celery] result_backend {redact(result_backend)!r}: unknown "
                               f"result backend {scheme!r} (use redis://host:6379/1)")


def redact(url: str) -> str:
    """A broker or backend URL with its password hidden (for messages)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
