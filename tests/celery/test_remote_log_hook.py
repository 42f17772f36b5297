"""flux-celery's ``flux_remote_task_log``: the web's way to a log kept on the worker that ran the try.

The worker is played by a real log server on 127.0.0.1, reached as "localhost": a name other than
this machine's, so the plugin treats the try as one that ran elsewhere.
"""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path

import pytest
from celery_harness import free_port

from flux.config import reset_config
from flux.dates import UTC
from flux.models import TaskInstance
from flux.plugins import get_plugin_manager
from flux_celery.logserver import serve_logs

DAY1 = datetime(2024, 1, 1, tzinfo=UTC)
LOG = "[2024-01-01] INFO - ran on the worker\nsecond line\n"


def test_the_celery_plugin_fetches_a_log_from_the_worker_that_ran_the_try(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if socket.gethostname() == "localhost":
        pytest.skip("this machine is called localhost: no other name for 127.0.0.1 to use")
    port = free_port()
    monkeypatch.setenv("FLUX__WEBSERVER__SECRET_KEY", "s3cret")
    monkeypatch.setenv("FLUX__CELERY__WORKER_LOG_SERVER_PORT", str(port))
    reset_config()
    worker_logs = tmp_path / "worker-logs"  # not this process's log folder
    (worker_logs / "d" / "t" / "2024-01-01T00:00:00").mkdir(parents=True)
    (worker_logs / "d" / "t" / "2024-01-01T00:00:00" / "1.log").write_text(LOG)
    ti = TaskInstance(dag_id="d", task_id="t", execution_date=DAY1, try_number=1,
                      hostname="localhost", state="success")
    manager = get_plugin_manager()
    assert manager.plugins["celery"].status == "loaded"

    server = serve_logs(port, host="127.0.0.1", folder=worker_logs)
    try:
        whole = manager.remote_task_log(ti, 1, 0)
        assert whole is not None and tuple(whole) == (LOG, len(LOG.encode()))
        start = LOG.index("second")
        assert tuple(manager.remote_task_log(ti, 1, start)) == ("second line\n", len(LOG.encode()))
        assert manager.remote_task_log(ti, 2, 0) is None  # the worker has no such try
    finally:
        server.shutdown()
        server.server_close()

    down = manager.remote_task_log(ti, 1, 7)
    assert down is not None
    assert down.text.startswith("*** could not fetch the log from worker localhost: ")
    assert "cannot reach the log server" in down.text and down.text.count("\n") == 1
    assert down.next_offset == 7  # the next read tries again from the same place

    # a try that ran on this machine is left to the local log folder
    here = TaskInstance(dag_id="d", task_id="t", execution_date=DAY1, try_number=1,
                        hostname=socket.gethostname(), state="success")
    assert manager.remote_task_log(here, 1, 0) is None
