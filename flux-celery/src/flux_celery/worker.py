"""``flux worker``: a Celery worker that runs task instances as ``flux run`` does.

It consumes the queues it is given, runs ``concurrency`` task instances at once in forked pool
processes (each imports a DAG file once and keeps it), writes states and heartbeats to the shared
metadata database, records itself in the ``job`` table (``job_type = "worker"``) and serves its
task logs to the webserver (:mod:`flux_celery.logserver`).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from flux_celery.errors import CelerySetupError
from flux_celery.settings import CelerySettings, redact

log = logging.getLogger(__name__)


def parse_queues(text: str | None, default: str) -> list[str]:
    """``"a, b"`` -> ``["a", "b"]``; every name must be non-empty and free of spaces."""
    if text is None:
        return [default]
    names = [name.strip() for name in text.split(",")]
    if not names or any(not name or any(c.isspace() for c in name) for name in names):
        raise CelerySetupError(f"invalid queue list {text!r}: give names separated by commas, "
                               "e.g. -q default,etl")
    return list(dict.fromkeys(names))


def _quiet_child_logging(**_: Any) -> None:
    # a pool process writes each task's output to the task's log file, not to the worker's console
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)


def _beat(job_id: int, every: float, stop: threading.Event) -> None:
    from flux import jobs
    from flux.exceptions import FluxError

    while not stop.wait(every):
        try:
            jobs.heartbeat(job_id)
        except FluxError as exc:
            log.warning("worker heartbeat failed: %s", exc)


def run_worker(queues: list[str], concurrency: int, hostname: str | None = None,
               loglevel: str = "INFO") -> None:
    """Run a worker until it is stopped (SIGTERM: warm shutdown, running tries finish first)."""
    from celery.signals import worker_process_init

    from flux import jobs
    from flux.config import get_config
    from flux.db import get_engine, is_sqlite

    if concurrency < 1:
        raise CelerySetupError(f"concurrency must be at least 1, got {concurrency}")
    settings = CelerySettings.from_config()
    get_engine()  # an unreachable or unmigrated metadata database: a clear error now, not per task
    if is_sqlite():
        log.warning("the metadata database is SQLite: only workers on this machine can share it; "
                    "use MariaDB/MySQL or PostgreSQL for workers on several machines")
    from flux_celery.app import get_app

    app = get_app(settings)
    worker_process_init.connect(_quiet_child_logging, weak=False)
    server = None
    if settings.worker_log_server_port:
        from flux_celery.logserver import serve_logs

        try:
            server = serve_logs(settings.worker_log_server_port)
        except OSError as exc:
            log.warning("cannot serve task logs on port %d (%s): the webserver will not show this "
                        "worker's logs; set [celery] worker_log_server_port",
                        settings.worker_log_server_port, exc.strerror or exc)
    job_id = jobs.start_job("worker")
    stop = threading.Event()
    every = float(get_config().get("scheduler", "heartbeat_seconds", 5.0))
    threading.Thread(target=_beat, args=(job_id, every, stop), name="flux-worker-heartbeat",
                     daemon=True).start()
    print(f"Worker starting: queues {', '.join(queues)}, concurrency {concurrency}, broker "
          f"{redact(settings.broker_url)}, logs {get_config().log_folder}"
          + (f" (served on port {settings.worker_log_server_port})" if server else ""), flush=True)
    argv = ["worker", f"--queues={','.join(queues)}", f"--concurrency={concurrency}",
            f"--hostname={hostname or f'flux-{os.getpid()}@%h'}", f"--loglevel={loglevel}",
            "--pool=prefork", "--without-gossip", "--without-mingle"]
    state = "failed"
    try:
        app.worker_main(argv)
        state = "success"
    except SystemExit as exc:
        state = "success" if not exc.code else "failed"
        raise
    finally:
        stop.set()
        if server is not None:
            server.shutdown()
        jobs.end_job(job_id, state)
