"""Logs of tries that ran on another machine: the web asks the plugins (``flux_remote_task_log``).

A throwaway plugin stands in for the worker's log server (flux-celery's own implementation is
tested against a real log server in tests/celery/test_remote_log_hook.py).
"""

from __future__ import annotations

import re
import socket
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from flux.hookspecs import RemoteTaskLog, hookimpl
from flux.plugins import PluginInfo, get_plugin_manager

WHEN = datetime(2024, 1, 5)
PAGE = "/dags/web_demo/tasks/work/2024-01-05T00:00:00"
REMOTE_TEXT = "ran on worker-7 <b>bold</b> with password hunter2-remote\nsecond line\n"


@contextmanager
def remote_log_plugin(answer: Callable[..., Any]) -> Iterator[list[tuple[str, int, int]]]:
    """A throwaway plugin implementing ``flux_remote_task_log``; yields the calls it received."""
    calls: list[tuple[str, int, int]] = []

    def flux_remote_task_log(ti: Any, try_number: int, offset: int) -> Any:
        calls.append((ti.hostname, try_number, offset))
        return answer(ti, try_number, offset)

    manager = get_plugin_manager()
    plugin = types.SimpleNamespace(flux_remote_task_log=hookimpl(flux_remote_task_log))
    manager.register(plugin, PluginInfo("remote-logs", "tests.remote_logs", "flux-remote-logs", "1.0"))
    try:
        yield calls
    finally:
        manager.unregister("remote-logs")


def from_worker(ti: Any, try_number: int, offset: int) -> RemoteTaskLog | None:
    """The remote log from byte ``offset`` on, like a worker's log server would serve it."""
    if ti.hostname != "worker-7":
        return None
    data = REMOTE_TEXT.encode()
    return RemoteTaskLog(data[offset:].decode(), len(data))


def add_ti(hostname: str, state: str = "success") -> None:
    from flux.dates import as_utc
    from flux.db import session_scope
    from flux.models import TaskInstance

    with session_scope() as session:
        session.add(TaskInstance(dag_id="web_demo", task_id="work", execution_date=as_utc(WHEN),
                                 state=state, try_number=1, hostname=hostname))


def _text(response: Any) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def test_a_log_kept_on_another_machine_is_shown_masked_and_escaped(admin: Any, demo_dag: Any) -> None:
    from flux.connections import clear_secrets, register_secret

    add_ti("worker-7", state="running")
    register_secret("hunter2-remote")
    try:
        with remote_log_plugin(from_worker) as calls:
            page = _text(admin.get(PAGE))
            assert "ran on worker-7 &lt;b&gt;bold&lt;/b&gt; with password ***" in page
            assert "hunter2-remote" not in page and "<b>bold</b>" not in page
            assert 'id="log-missing"' not in page
            offset = int(re.search(r'data-offset="(\d+)"', page).group(1))
            assert offset == len(REMOTE_TEXT.encode())

            api = admin.get("/api/v1/dags/web_demo/tasks/work/instances/2024-01-05/logs/1").get_json()
            assert api["exists"] is True
            assert api["content"] == REMOTE_TEXT.replace("hunter2-remote", "***")
            assert api["next_offset"] == len(REMOTE_TEXT.encode())

            # the page's polling asks the plugin from where it stopped
            start = REMOTE_TEXT.index("second")
            more = admin.get(f"{PAGE}/log/1?offset={start}").get_json()
            assert more["content"] == "second line\n" and more["offset"] == start
        assert calls == [("worker-7", 1, 0), ("worker-7", 1, 0), ("worker-7", 1, start)]
    finally:
        clear_secrets()


def test_a_local_log_file_wins_over_the_plugins(admin: Any, demo_dag: Any) -> None:
    from flux.dates import as_utc
    from flux.tasklog import log_path

    add_ti("worker-7")
    path = log_path("web_demo", "work", as_utc(WHEN), 1)
    path.parent.mkdir(parents=True)
    path.write_text("written here\n")
    with remote_log_plugin(from_worker) as calls:
        page = _text(admin.get(PAGE))
        api = admin.get("/api/v1/dags/web_demo/tasks/work/instances/2024-01-05/logs/1").get_json()
    assert "written here" in page and "ran on worker-7" not in page
    assert api["content"] == "written here\n"
    assert calls == []


def test_a_failing_plugin_leaves_the_page_working(admin: Any, demo_dag: Any) -> None:
    def broken(ti: Any, try_number: int, offset: int) -> Any:
        raise RuntimeError("worker registry unavailable")

    # this machine's name: flux-celery (if installed) leaves such a try to the local folder
    add_ti(socket.gethostname())
    with remote_log_plugin(broken) as calls:
        page = _text(admin.get(PAGE))
        api = admin.get("/api/v1/dags/web_demo/tasks/work/instances/2024-01-05/logs/1").get_json()
    assert calls  # it was asked, and its failure did not break the page
    assert 'id="log-missing"' in page
    assert api["exists"] is False and api["content"] == ""
