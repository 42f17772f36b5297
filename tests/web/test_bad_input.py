"""Bad input: unknown names (404), malformed values (400 with the reason), paths out of the log
folder (refused), markup in names, descriptions and logs (escaped)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from flux.dates import as_utc


@pytest.mark.parametrize("url", [
    "/dags/no_such_dag/tree",
    "/dags/no_such_dag/graph",
    "/dags/no_such_dag/gantt",
    "/dags/no_such_dag/durations",
    "/dags/no_such_dag/code",
    "/dags/no_such_dag/tasks/work/2024-01-01",
    "/dags/web_demo/tasks/no_such_task/2024-01-01",
    "/dags/web_demo/clear?task_id=no_such_task&execution_date=2024-01-01",
    "/dags/web_demo/tasks/end/2024-01-01/log/1",
    "/dags/web_demo/tasks/work/2024-01-01/log/7",
])
def test_unknown_dag_task_or_try_is_a_404_page(admin: Any, demo_runs: Any, url: str) -> None:
    response = admin.get(url)
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "404" in body and "Traceback" not in body


def test_the_404_page_says_what_is_missing(admin: Any, demo_dag: Any) -> None:
    body = admin.get("/dags/no_such_dag/tree").get_data(as_text=True)
    assert "DAG &#39;no_such_dag&#39; not found" in body


@pytest.mark.parametrize("url", [
    "/dags/web_demo/tasks/work/2024-13-45",
    "/dags/web_demo/tasks/work/yesterday",
    "/dags/web_demo/tree?base_date=soon",
    "/dags/web_demo/graph?execution_date=2024-02-30",
    "/dags/web_demo/gantt?execution_date=x",
    "/dags/web_demo/tree?num_runs=lots",
    "/dags/web_demo/tree?num_runs=0",
    "/dags?page=-1",
    "/dags/web_demo/clear?task_id=work&execution_date=nope",
    "/dags/web_demo/tasks/work/2024-01-01/log/1?offset=abc",
])
def test_malformed_values_are_a_400_with_the_reason(admin: Any, demo_runs: Any, url: str) -> None:
    response = admin.get(url)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Traceback" not in body
    assert any(word in body for word in ("invalid date", "expected", "execution_date", "base_date"))


def test_a_malformed_date_names_the_problem(admin: Any, demo_dag: Any) -> None:
    body = admin.get("/dags/web_demo/tasks/work/2024-13-45").get_data(as_text=True)
    assert "invalid date &#39;2024-13-45&#39;" in body


def test_a_malformed_trigger_date_is_a_400(admin: Any, demo_dag: Any) -> None:
    response = admin.post("/dags/web_demo/trigger", {"conf": "{}", "execution_date": "someday"})
    assert response.status_code == 400 and "invalid date" in response.get_data(as_text=True)


# --- logs stay inside the log folder ---------------------------------------------------------------


@pytest.fixture
def secret_outside(flux_env: Path) -> Path:
    """A file outside the log folder that a path trick might reach."""
    outside = flux_env / "outside"
    outside.mkdir()
    path = outside / "1.log"
    path.write_text("TOP SECRET outside the log folder\n")
    return path


def _insert_ti(dag_id: str, task_id: str, when: datetime) -> None:
    from flux.db import session_scope
    from flux.models import TaskInstance

    with session_scope() as session:
        session.add(TaskInstance(dag_id=dag_id, task_id=task_id, execution_date=as_utc(when),
                                 state="failed", try_number=1))


@pytest.mark.parametrize(("dag_id", "task_id"), [("..", "x"), ("web_demo", ".."), ("..", "..")])
def test_ids_that_climb_out_of_the_log_folder_are_refused(admin: Any, demo_dag: Any,
                                                          secret_outside: Path, dag_id: str,
                                                          task_id: str) -> None:
    _insert_ti(dag_id, task_id, datetime(2024, 1, 1))
    for url in (f"/dags/{dag_id}/tasks/{task_id}/2024-01-01/log/1",
                f"/api/v1/dags/{dag_id}/tasks/{task_id}/instances/2024-01-01/logs/1",
                "/dags/%2E%2E/tasks/%2E%2E/2024-01-01/log/1"):
        response = admin.get(url)
        assert response.status_code in (400, 404), url
        assert b"TOP SECRET" not in response.data


def test_safe_log_path_refuses_traversal_and_absolute_paths(flux_env: Path) -> None:
    from flux_web.errors import UnsafeLogPath
    from flux_web.logs import read_log, safe_log_path

    when = as_utc(datetime(2024, 1, 1))
    for dag_id, task_id in [("..", "t"), ("d", ".."), ("/etc", "t"), ("d", "/etc/passwd"),
                            ("a/../../b", "t"), ("d", "t\x00"), ("", "t"), ("d", "a\\b")]:
        with pytest.raises(UnsafeLogPath):
            safe_log_path(dag_id, task_id, when, 1)
        with pytest.raises(UnsafeLogPath):
            read_log(dag_id, task_id, when, 1)
    with pytest.raises(UnsafeLogPath):
        safe_log_path("d", "t", when, 0)
    assert safe_log_path("d", "t", when, 1).is_relative_to(flux_env / "logs")


def test_a_symlink_out_of_the_log_folder_is_refused(admin: Any, demo_dag: Any,
                                                    secret_outside: Path) -> None:
    from flux.tasklog import log_path

    when = as_utc(datetime(2024, 1, 9))
    _insert_ti("web_demo", "work", when)
    link = log_path("web_demo", "work", when, 1)
    link.parent.mkdir(parents=True)
    os.symlink(secret_outside, link)
    response = admin.get("/dags/web_demo/tasks/work/2024-01-09/log/1")
    assert response.status_code == 400
    assert b"TOP SECRET" not in response.data
    page = admin.get("/dags/web_demo/tasks/work/2024-01-09T00:00:00")
    assert page.status_code == 400 and b"TOP SECRET" not in page.data


# --- markup is shown as text -------------------------------------------------------------------------


def test_markup_in_a_dag_description_is_escaped(admin: Any, demo_dag: Any) -> None:
    for url in ("/dags", "/dags/web_demo/tree"):
        body = admin.get(url).get_data(as_text=True)
        assert "<script>alert(" not in body
        assert "&lt;script&gt;alert(&#39;description&#39;)&lt;/script&gt;" in body


def test_markup_in_a_log_line_is_escaped(admin: Any, demo_runs: Any) -> None:
    body = admin.get("/dags/web_demo/tasks/work/2024-01-01T00:00:00").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#39;log&#39;)&lt;/script&gt;" in body
    assert "<script>alert('log')" not in body


def test_markup_in_ids_from_the_url_or_the_database_is_escaped(admin: Any, demo_dag: Any) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    _insert_ti("web_demo", hostile, datetime(2024, 1, 1))
    from flux.db import session_scope
    from flux.models import AuditLog

    with session_scope() as session:
        session.add(AuditLog(dttm=as_utc(datetime(2024, 1, 1)), event="x", owner=hostile,
                             dag_id="web_demo", task_id=hostile, extra=hostile))
    for url in ("/audit", "/dags/web_demo/gantt?execution_date=2024-01-01",
                "/dags/web_demo/graph?execution_date=2024-01-01",
                "/dags/web_demo/tasks/<script>x<%2Fscript>/2024-01-01",
                "/dags/<b>bold<%2Fb>/tree", "/dags/web_demo/tasks/work/<i>date</i>"):
        body = admin.get(url).get_data(as_text=True)
        assert "<img src=x" not in body and "<script>x" not in body and "<b>bold" not in body
        assert "<i>date" not in body


def test_markup_in_a_task_id_inside_the_page_data_is_inert(admin: Any, demo_dag: Any) -> None:
    _insert_ti("web_demo", "</script><script>alert(1)</script>", datetime(2024, 1, 1))
    from flux.db import session_scope
    from flux.models import TaskInstance

    with session_scope() as session:
        ti = session.get(TaskInstance, ("web_demo", "</script><script>alert(1)</script>",
                                        as_utc(datetime(2024, 1, 1))))
        ti.start_date = ti.end_date = as_utc(datetime(2024, 1, 1, 1))
    body = admin.get("/dags/web_demo/gantt?execution_date=2024-01-01").get_data(as_text=True)
    assert "</script><script>alert(1)" not in body
    assert "\\u003c/script\\u003e" in body  # JSON inside the page escapes < and >


def test_a_malformed_json_body_is_a_400(admin: Any, demo_dag: Any) -> None:
    response = admin.http.post("/api/v1/dags/web_demo/runs", data="{nope",
                               headers={"X-CSRF-Token": admin.csrf, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "the request body must be a JSON object"


def test_an_oversized_body_is_refused(admin: Any, demo_dag: Any) -> None:
    response = admin.post("/dags/web_demo/trigger", {"conf": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413
