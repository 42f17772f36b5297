"""The JSON API under /api/v1 and its OpenAPI document."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest


def test_list_dags(viewer: Any, demo_runs: Any) -> None:
    body = viewer.get("/api/v1/dags").get_json()
    assert body["total_entries"] == 1
    dag = body["dags"][0]
    assert dag["dag_id"] == "web_demo" and dag["owners"] == "carol" and dag["schedule"] == "@daily"
    assert dag["recent_runs"] == {"failed": 3} and dag["is_paused"] is False
    assert dag["last_run"] == {"execution_date": "2024-01-03T00:00:00+00:00", "state": "failed"}


def test_list_dags_pages_by_limit_and_offset(viewer: Any, demo_dag: Any) -> None:
    assert viewer.get("/api/v1/dags?limit=1&offset=1").get_json()["dags"] == []
    assert viewer.get("/api/v1/dags?limit=2&offset=1").status_code == 400
    assert viewer.get("/api/v1/dags?limit=5000").status_code == 400


def test_get_dag_lists_its_tasks(viewer: Any, demo_dag: Any) -> None:
    body = viewer.get("/api/v1/dags/web_demo").get_json()
    tasks = {t["task_id"]: t for t in body["tasks"]}
    assert tasks["work"]["upstream_task_ids"] == ["extract"]
    assert tasks["start"]["downstream_task_ids"] == ["end", "extract"]
    assert tasks["work"]["operator"] == "PythonOperator"


def test_unknown_dag_is_a_json_404(viewer: Any, demo_dag: Any) -> None:
    for url in ("/api/v1/dags/nope", "/api/v1/dags/nope/runs",
                "/api/v1/dags/web_demo/tasks/work/instances/2024-01-01"):
        response = viewer.get(url)
        assert response.status_code == 404, url
        assert response.get_json()["status"] == 404


def test_runs_and_their_task_instances(viewer: Any, demo_runs: Any) -> None:
    runs = viewer.get("/api/v1/dags/web_demo/runs").get_json()["dag_runs"]
    assert [r["execution_date"][:10] for r in runs] == ["2024-01-03", "2024-01-02", "2024-01-01"]
    tis = viewer.get("/api/v1/dags/web_demo/runs/2024-01-02/taskInstances").get_json()["task_instances"]
    assert {t["task_id"]: t["state"] for t in tis} == {"start": "success", "extract": "success",
                                                       "work": "failed"}


def test_one_task_instance_and_its_log(viewer: Any, demo_runs: Any) -> None:
    ti = viewer.get("/api/v1/dags/web_demo/tasks/work/instances/2024-01-02").get_json()
    assert (ti["state"], ti["try_number"]) == ("failed", 1)
    log = viewer.get("/api/v1/dags/web_demo/tasks/work/instances/2024-01-02/logs/1").get_json()
    assert "ValueError: the marker file is missing" in log["content"]
    assert log["size"] == log["next_offset"] > 0
    assert viewer.get("/api/v1/dags/web_demo/tasks/work/instances/2024-01-02/logs/2").status_code == 404
    assert viewer.get("/api/v1/dags/web_demo/tasks/work/instances/junk/logs/1").status_code == 400


def test_trigger_through_the_api(admin: Any, demo_dag: Any) -> None:
    response = admin.api("POST", "/api/v1/dags/web_demo/runs",
                         {"conf": {"a": 1}, "execution_date": "2024-03-04"})
    assert response.status_code == 201
    run = response.get_json()
    assert (run["state"], run["run_type"], run["conf"]) == ("queued", "manual", {"a": 1})
    assert admin.api("POST", "/api/v1/dags/web_demo/runs",
                     {"execution_date": "2024-03-04"}).status_code == 409


@pytest.mark.parametrize(("body", "reason"), [
    ({"conf": [1]}, "conf must be a JSON object"),
    ({"conf": "{bad"}, "conf is not valid JSON"),
    ({"execution_date": "never"}, "invalid date"),
    ({"execution_date": 5}, "expected a date string"),
    ({"colour": "red"}, "unknown field"),
    ([], "must be a JSON object"),
])
def test_trigger_refuses_bad_bodies_with_the_reason(admin: Any, demo_dag: Any, body: Any,
                                                    reason: str) -> None:
    response = admin.api("POST", "/api/v1/dags/web_demo/runs", body)
    assert response.status_code == 400
    assert reason in response.get_json()["error"]


def test_clear_through_the_api_dry_run_then_for_real(admin: Any, demo_runs: Any) -> None:
    body = {"task_ids": ["work"], "start_date": "2024-01-02", "end_date": "2024-01-03",
            "include_upstream": True, "dry_run": True}
    listed = admin.api("POST", "/api/v1/dags/web_demo/clear", body).get_json()
    expected = sorted((t, d) for d in ("2024-01-02", "2024-01-03") for t in ("extract", "start", "work"))
    assert sorted((t["task_id"], t["execution_date"][:10]) for t in listed["task_instances"]) == expected
    assert admin.get("/api/v1/dags/web_demo/tasks/work/instances/2024-01-02").get_json()["state"] == "failed"
    body["dry_run"] = False
    cleared = admin.api("POST", "/api/v1/dags/web_demo/clear", body).get_json()
    assert len(cleared["task_instances"]) == 6
    assert admin.get("/api/v1/dags/web_demo/tasks/work/instances/2024-01-02").get_json()["state"] is None
    assert admin.get("/api/v1/dags/web_demo/tasks/work/instances/2024-01-01").get_json()["state"] == "failed"


@pytest.mark.parametrize(("body", "status"), [
    ({"task_ids": []}, 400),
    ({"task_ids": "work"}, 400),
    ({"task_ids": ["nope"]}, 404),
    ({"task_ids": ["work"], "dry_run": "yes"}, 400),
    ({"task_ids": ["work"], "start_date": "2024-02-01", "end_date": "2024-01-01"}, 400),
])
def test_clear_refuses_bad_bodies(admin: Any, demo_runs: Any, body: Any, status: int) -> None:
    assert admin.api("POST", "/api/v1/dags/web_demo/clear", body).status_code == status


def test_set_state_and_pause_through_the_api(admin: Any, demo_runs: Any) -> None:
    url = "/api/v1/dags/web_demo/tasks/work/instances/2024-01-01/state"
    assert admin.api("POST", url, {"state": "success"}).get_json()["state"] == "success"
    assert admin.api("POST", url, {"state": "queued"}).status_code == 400
    assert admin.api("PATCH", "/api/v1/dags/web_demo", {"is_paused": True}).get_json()["is_paused"] is True
    assert admin.api("PATCH", "/api/v1/dags/web_demo", {"owners": "x"}).status_code == 400


def _flask_to_openapi(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_the_openapi_document_describes_every_api_route(viewer: Any, app: Any) -> None:
    document = viewer.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method) for path, item in document["paths"].items()
                  for method in item if method in ("get", "post", "patch", "put", "delete")}
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = _flask_to_openapi(rule.rule[len("/api/v1"):])
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == documented
    for path, item in document["paths"].items():
        names = {p["name"] for p in item.get("parameters", [])}
        assert set(re.findall(r"{(\w+)}", path)) <= names, path


def test_the_openapi_documents_security_and_error_shapes(viewer: Any) -> None:
    document = viewer.get("/api/v1/openapi.json").get_json()
    assert set(document["components"]["securitySchemes"]) == {"basic", "session"}
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "status"]
    for ref in re.findall(r'"\$ref": "#/components/(\w+)/(\w+)"',
                          __import__("json").dumps(document)):
        assert ref[1] in document["components"][ref[0]], ref


def test_dates_in_the_api_are_iso_with_utc(viewer: Any, demo_runs: Any) -> None:
    ti = viewer.get("/api/v1/dags/web_demo/tasks/start/instances/2024-01-01T00:00:00Z").get_json()
    start = datetime.fromisoformat(ti["start_date"])
    assert start.utcoffset() is not None and start.utcoffset().total_seconds() == 0
