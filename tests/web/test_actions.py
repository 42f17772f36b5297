"""Actions from the pages: clear (with its confirmation page), mark, trigger, pause; each audited."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest

from flux.dates import as_utc


def _states(dag_id: str = "web_demo") -> dict[tuple[str, str], str | None]:
    from flux.db import session_scope
    from flux.models import TaskInstance

    with session_scope() as session:
        return {(ti.task_id, ti.execution_date.strftime("%d")): ti.state
                for ti in session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id)}


def _audit() -> list[tuple[str, str, str | None, dict[str, Any]]]:
    from flux.db import session_scope
    from flux.models import AuditLog

    with session_scope() as session:
        return [(e.event, e.owner, e.task_id, json.loads(e.extra or "{}"))
                for e in session.query(AuditLog).order_by(AuditLog.id)]


def _listed(page: str) -> list[tuple[str, str]]:
    table = re.search(r'<table class="grid" id="to-clear">(.*?)</table>', page, re.S)
    if table is None:
        return []
    return re.findall(r"<tr><td>([^<]+)</td><td>\d{4}-\d\d-(\d\d) ", table.group(1))


CASES = {
    "only it": ({}, [("work", "02")]),
    "upstream": ({"upstream": "true"}, [("extract", "02"), ("start", "02"), ("work", "02")]),
    "downstream": ({"downstream": "true"}, [("work", "02")]),  # end never ran: nothing to clear
    "past": ({"past": "true"}, [("work", "01"), ("work", "02")]),
    "future": ({"future": "true"}, [("work", "02"), ("work", "03")]),
    "past and future, upstream": ({"past": "true", "future": "true", "upstream": "true"},
                                  [(t, d) for d in ("01", "02", "03")
                                   for t in ("extract", "start", "work")]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_confirmation_page_lists_exactly_what_the_clear_resets(admin: Any, demo_runs: Any,
                                                                   case: str) -> None:
    options, expected = CASES[case]
    query = {"task_id": "work", "execution_date": "2024-01-02T00:00:00", **options}
    page = admin.get("/dags/web_demo/clear", query_string=query)
    assert page.status_code == 200
    listed = _listed(page.get_data(as_text=True))
    assert sorted(listed) == sorted(expected)
    before = _states()
    response = admin.post("/dags/web_demo/clear", query)
    assert response.status_code == 302
    assert response.headers["Location"] == "/dags/web_demo/tasks/work/2024-01-02T00:00:00"
    after = _states()
    changed = sorted(key for key in before if before[key] != after[key])
    assert changed == sorted(expected)
    assert all(after[key] is None for key in changed)
    event, owner, _task, extra = _audit()[-1]
    assert (event, owner, extra["count"]) == ("clear", "alice", len(expected))


def test_the_confirmation_page_changes_nothing(admin: Any, demo_runs: Any) -> None:
    before = _states()
    admin.get("/dags/web_demo/clear?task_id=work&execution_date=2024-01-01&past=true&future=true")
    assert _states() == before
    assert _audit() == []


def test_clearing_a_failed_instance_lets_it_run_again(admin: Any, demo_runs: Any, run_ti: Any,
                                                     marker: Any) -> None:
    admin.post("/dags/web_demo/clear", {"task_id": "work", "execution_date": "2024-01-01"})
    marker.touch()
    result = run_ti(demo_runs, "work", datetime(2024, 1, 1), ignore_dependencies=False)
    assert result.state == "success" and result.try_number == 2


def test_mark_success_and_failed(admin: Any, demo_runs: Any) -> None:
    url = "/dags/web_demo/tasks/{}/2024-01-03T00:00:00/mark"
    assert admin.post(url.format("work"), {"state": "success"}).status_code == 302
    assert admin.post(url.format("end"), {"state": "failed"}).status_code == 302
    states = _states()
    assert states[("work", "03")] == "success" and states[("end", "03")] == "failed"
    assert [(e, o, t) for e, o, t, _ in _audit()] == [("mark_success", "alice", "work"),
                                                      ("mark_failed", "alice", "end")]
    assert _audit()[0][3]["previous_state"] == "failed"


def test_mark_refuses_other_states(admin: Any, demo_runs: Any) -> None:
    response = admin.post("/dags/web_demo/tasks/work/2024-01-03/mark", {"state": "running"})
    assert response.status_code == 400
    assert _states()[("work", "03")] == "failed"


def test_trigger_creates_a_queued_manual_run_with_its_conf(admin: Any, demo_dag: Any) -> None:
    response = admin.post("/dags/web_demo/trigger", {"conf": '{"table": "sales", "n": 3}',
                                                    "execution_date": "2024-05-06T07:08:09"})
    assert response.status_code == 302
    from flux.db import session_scope
    from flux.models import DagRun

    with session_scope() as session:
        run = session.query(DagRun).one()
        assert (run.run_type, run.state, run.external_trigger) == ("manual", "queued", True)
        assert run.execution_date == as_utc(datetime(2024, 5, 6, 7, 8, 9))
        assert json.loads(run.conf) == {"table": "sales", "n": 3}
    event, owner, _task, extra = _audit()[-1]
    assert (event, owner, extra["conf"]) == ("trigger", "alice", {"table": "sales", "n": 3})


@pytest.mark.parametrize(("conf", "reason"), [
    ("{not json", "conf is not valid JSON"),
    ("[1, 2]", "conf must be a JSON object"),
    ('"text"', "conf must be a JSON object"),
])
def test_trigger_refuses_malformed_conf_with_the_reason(admin: Any, demo_dag: Any, conf: str,
                                                        reason: str) -> None:
    response = admin.post("/dags/web_demo/trigger", {"conf": conf})
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert _audit() == []


def test_trigger_twice_for_one_date_is_a_conflict(admin: Any, demo_dag: Any) -> None:
    data = {"conf": "{}", "execution_date": "2024-05-06"}
    assert admin.post("/dags/web_demo/trigger", data).status_code == 302
    response = admin.post("/dags/web_demo/trigger", data)
    assert response.status_code == 409
    assert "already has a run" in response.get_data(as_text=True)


def test_pause_and_unpause(admin: Any, demo_dag: Any) -> None:
    from flux.db import session_scope
    from flux.models import DagModel

    response = admin.post("/dags/web_demo/paused", {"paused": "true", "next": "/dags?q=web"})
    assert response.headers["Location"] == "/dags?q=web"
    with session_scope() as session:
        assert session.get(DagModel, "web_demo").is_paused is True
    page = admin.get("/dags").get_data(as_text=True)
    assert 'title="Unpause web_demo"' in page
    admin.post("/dags/web_demo/paused", {"paused": "false", "next": "https://evil.example/"})
    with session_scope() as session:
        assert session.get(DagModel, "web_demo").is_paused is False
    assert [e for e, *_ in _audit()] == ["pause", "unpause"]


def test_pause_refuses_a_value_that_is_not_true_or_false(admin: Any, demo_dag: Any) -> None:
    assert admin.post("/dags/web_demo/paused", {"paused": "maybe"}).status_code == 400
