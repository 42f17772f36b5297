"""The Celery application shared by the executor (which sends) and ``flux worker`` (which runs).

Messages are JSON (never pickle: whoever can write to the broker must not be able to run code
through it). Acknowledgement is late and a message whose worker process died goes back to the
queue, one message is prefetched at a time: a worker lost mid-task does not lose its task, and
the try fencing of :mod:`flux_celery.runner` makes sure the redelivered message never runs a try
that already started.
"""

from __future__ import annotations

import threading
from typing import Any

from flux_celery.settings import CelerySettings

#: the name of the one Celery task: "run this task instance try"
TASK_NAME = "flux.run_task_instance"

_apps: dict[CelerySettings, Any] = {}
_lock = threading.Lock()


def get_app(settings: CelerySettings | None = None) -> Any:
    """The Celery app for ``settings`` (default: the configured ones), built once per process."""
    settings = settings or CelerySettings.from_config()
    with _lock:
        app = _apps.get(settings)
        if app is None:
            app = _apps[settings] = _build(settings)
    return app


def _build(settings: CelerySettings) -> Any:
    from celery import Celery
    from flux_celery.backend import OVERRIDES

    app = Celery("flux", broker=settings.broker_url, backend=settings.result_backend,
                 set_as_current=False)
    app.loader.override_backends = dict(OVERRIDES)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_default_queue=settings.default_queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # a worker that lost the broker keeps running its tasks; acks_late covers the rest
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=settings.broker_timeout,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            # look for messages of dead workers a few times per visibility timeout (one ZRANGE)
            "unacked_restore_interval": min(60, max(1, settings.visibility_timeout // 4)),
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": settings.broker_timeout,
            "socket_timeout": max(settings.broker_timeout, 10.0),
        },
        result_backend_transport_options={"socket_connect_timeout": settings.broker_timeout},
        redis_socket_connect_timeout=settings.broker_timeout,
        redis_backend_health_check_interval=30,
        # the executor reads outcomes within seconds; the metadata database keeps them for good
        result_expires=6 * 3600,
        task_publish_retry=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        enable_utc=True,
    )
    app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True,
             ignore_result=False)(_run_task_instance)
    return app


def _run_task_instance(self: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """The Celery task: run one try, as ``flux run`` does (imported lazily in the worker)."""
    from flux_celery.runner import run_payload

    return run_payload(payload, redelivered=bool((self.request.delivery_info or {}).get("redelivered")))


def reset_apps() -> None:
    """Forget the apps built so far (tests change settings between cases)."""
    with _lock:
        for app in _apps.values():
            try:
                app.close()
            except Exception:  # closing a pool whose broker is gone may fail; nothing to keep
                pass
        _apps.clear()
