"""The pages: what each shows, from real runs of the demo DAG."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from .conftest import BROKEN_DAG


def _text(response: Any) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def _json_block(page: str, element_id: str) -> Any:
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page, re.S)
    assert found, f"no #{element_id} data"
    return json.loads(found.group(1))


def test_dag_list_shows_each_dag_with_owner_schedule_paused_and_run_counts(
        admin: Any, demo_runs: Any, make_run: Any) -> None:
    from datetime import datetime

    make_run("web_demo", datetime(2024, 1, 4), "success")
    page = _text(admin.get("/dags"))
    row = re.search(r'<tr data-dag-id="web_demo">(.*?)</tr>', page, re.S).group(1)
    assert "carol" in row
    assert "@daily" in row
    assert 'title="3 failed"' in row and 'title="1 success"' in row
    assert "2024-01-04 00:00:00" in row  # the last run
    assert "active" in row  # not paused


def test_dag_list_shows_the_next_run(admin: Any, demo_dag: Any) -> None:
    from datetime import datetime

    from flux.dates import as_utc
    from flux.db import session_scope
    from flux.models import DagModel

    with session_scope() as session:
        session.get(DagModel, "web_demo").next_dagrun = as_utc(datetime(2024, 2, 3, 4, 5, 6))
    assert "2024-02-03 04:05:06" in _text(admin.get("/dags"))


def test_dag_list_has_a_banner_with_broken_dag_files_and_their_tracebacks(
        admin: Any, dags_folder: Path) -> None:
    from flux.dagbag import DagBag

    (dags_folder / "broken.py").write_text(BROKEN_DAG)
    DagBag(dags_folder).sync_to_db()
    page = _text(admin.get("/dags"))
    banner = re.search(r'<section class="banner broken" id="import-errors">(.*?)</section>', page, re.S)
    assert banner, "no broken-files banner"
    assert "broken.py" in banner.group(1)
    assert "ModuleNotFoundError" in banner.group(1)
    assert "Traceback" in banner.group(1)  # the whole traceback, not only its last line


def test_no_banner_without_broken_files(admin: Any, demo_dag: Any) -> None:
    assert "import-errors" not in _text(admin.get("/dags"))


def test_dag_list_pages_and_searches(admin: Any, flux_env: Path) -> None:
    from flux.db import session_scope
    from flux.models import DagModel

    with session_scope() as session:
        for n in range(25):
            session.add(DagModel(dag_id=f"bulk_{n:02d}", fileloc="/nowhere.py", is_paused=False,
                                 is_active=True, owners="o", schedule="@daily"))
    page = _text(admin.get("/dags?page_size=10&page=2"))
    assert "bulk_10" in page and "bulk_19" in page
    assert "bulk_09" not in page and "bulk_20" not in page
    assert "page 2 of 3" in page
    found = _text(admin.get("/dags?q=bulk_2"))
    assert re.findall(r'data-dag-id="([^"]+)"', found) == [f"bulk_{n}" for n in range(20, 25)]


def test_tree_rows_follow_the_dags_tree_lines_order(admin: Any, demo_runs: Any) -> None:
    page = _text(admin.get("/dags/web_demo/tree"))
    rows = re.findall(r'<tr data-task="([^"]+)"><th class="task-col" style="padding-left:(\d+)px">', page)
    expected = [(line.strip().split(": ")[1].rstrip(">"), (len(line) - len(line.lstrip())) // 4)
                for line in demo_runs.tree_lines()]
    assert [(task, (int(pad) - 4) // 14) for task, pad in rows] == expected
    assert expected[0] == ("end", 0)


def test_tree_has_a_coloured_square_per_task_instance_linking_to_its_page(
        admin: Any, demo_runs: Any) -> None:
    page = _text(admin.get("/dags/web_demo/tree"))
    row = re.search(r'<tr data-task="work">(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r'<a class="sq ([^"]+)" href="([^"]+)" title="([^"]+)">', row)
    assert [c[0] for c in cells] == ["s-failed"] * 3
    assert cells[0][1] == "/dags/web_demo/tasks/work/2024-01-01T00:00:00"
    end_row = re.search(r'<tr data-task="end">(.*?)</tr>', page, re.S).group(1)
    assert end_row.count('class="sq s-none"') == 3
    # the date columns, oldest first, one per run
    assert re.findall(r'class="run s-failed" data-date="([^"]+)"', page) == [
        "2024-01-01T00:00:00", "2024-01-02T00:00:00", "2024-01-03T00:00:00"]


def test_tree_follows_the_number_of_runs_and_the_base_date(admin: Any, demo_runs: Any) -> None:
    page = _text(admin.get("/dags/web_demo/tree?num_runs=2"))
    assert re.findall(r'data-date="([^"]+)"></a></th>', page) == ["2024-01-02T00:00:00",
                                                                  "2024-01-03T00:00:00"]
    page = _text(admin.get("/dags/web_demo/tree?num_runs=5&base_date=2024-01-02"))
    assert re.findall(r'data-date="([^"]+)"></a></th>', page) == ["2024-01-01T00:00:00",
                                                                  "2024-01-02T00:00:00"]


def test_tree_cell_links_open_the_task_instance(admin: Any, demo_runs: Any) -> None:
    page = _text(admin.get("/dags/web_demo/tree"))
    href = re.search(r'<tr data-task="work">.*?href="([^"]+)"', page, re.S).group(1)
    detail = _text(admin.get(html.unescape(href)))
    assert "ValueError: the marker file is missing" in detail


def test_graph_view_carries_nodes_edges_and_the_chosen_runs_states(admin: Any, demo_runs: Any) -> None:
    page = _text(admin.get("/dags/web_demo/graph?execution_date=2024-01-02"))
    data = _json_block(page, "graph-data")
    states = {n["id"]: n["state"] for n in data["nodes"]}
    assert states == {"start": "success", "extract": "success", "work": "failed", "end": None}
    assert sorted(map(tuple, data["edges"])) == [("extract", "work"), ("start", "end"),
                                                 ("start", "extract"), ("work", "end")]
    assert data["colors"]["failed"] == "#dc2626"
    assert "vendor/dagre.min.js" in page and "graph.js" in page


def test_graph_view_defaults_to_the_latest_date(admin: Any, demo_runs: Any) -> None:
    page = _text(admin.get("/dags/web_demo/graph"))
    nodes = _json_block(page, "graph-data")["nodes"]
    assert {n["id"]: n["url"] for n in nodes}["work"].endswith("/tasks/work/2024-01-03T00:00:00")


def test_gantt_chart_has_a_bar_per_started_task_instance(admin: Any, demo_runs: Any) -> None:
    page = _text(admin.get("/dags/web_demo/gantt?execution_date=2024-01-01T00:00:00"))
    bars = _json_block(page, "gantt-data")["bars"]
    assert sorted(b["task_id"] for b in bars) == ["extract", "start", "work"]
    for bar in bars:
        assert bar["end"] >= bar["start"] > 1.7e12
    assert {b["task_id"]: b["state"] for b in bars}["work"] == "failed"
    assert "vendor/chart.umd.min.js" in page


def test_durations_plot_has_one_series_per_task(admin: Any, demo_runs: Any) -> None:
    data = _json_block(_text(admin.get("/dags/web_demo/durations")), "durations-data")
    assert data["dates"] == ["2024-01-01T00:00:00", "2024-01-02T00:00:00", "2024-01-03T00:00:00"]
    series = {s["task_id"]: s["values"] for s in data["series"]}
    assert set(series) == {"start", "extract", "work"}
    assert all(isinstance(v, float) for v in series["work"])


def test_code_view_shows_the_dag_file_highlighted(admin: Any, demo_dag: Any) -> None:
    page = _text(admin.get("/dags/web_demo/code"))
    assert 'class="highlight"' in page
    assert "the marker file is missing" in page
    assert '<span class="k">def</span>' in page or '<span class="kn">' in page


def test_task_instance_page_shows_attributes_rendered_fields_and_the_log(admin: Any, demo_runs: Any) -> None:
    page = _text(admin.get("/dags/web_demo/tasks/work/2024-01-02T00:00:00"))
    assert "<th>try_number</th><td>1</td>" in page
    assert "<th>operator</th><td>PythonOperator</td>" in page
    assert "day 2024-01-02" in page  # a rendered template field
    assert "working on day 2024-01-02" in page  # the log
    assert "ValueError: the marker file is missing" in page
    assert "s-failed" in page


def test_task_instance_page_has_a_tab_per_try(admin: Any, demo_runs: Any, run_ti: Any, marker: Path) -> None:
    from datetime import datetime

    marker.touch()
    run_ti(demo_runs, "work", datetime(2024, 1, 1))
    page = _text(admin.get("/dags/web_demo/tasks/work/2024-01-01T00:00:00"))
    assert re.findall(r">try (\d)</a>", page) == ["1", "2"]
    assert "marker found" in page  # the latest try is shown first
    first = _text(admin.get("/dags/web_demo/tasks/work/2024-01-01T00:00:00?try=1"))
    assert "marker found" not in first and "the marker file is missing" in first


def test_a_task_instance_without_state_has_a_page(admin: Any, demo_runs: Any) -> None:
    page = _text(admin.get("/dags/web_demo/tasks/end/2024-01-01T00:00:00"))
    assert "has not been created yet" in page


def test_log_endpoint_returns_the_log_from_an_offset(admin: Any, demo_runs: Any) -> None:
    url = "/dags/web_demo/tasks/work/2024-01-01T00:00:00/log/1"
    whole = admin.get(url).get_json()
    assert "working on day 2024-01-01" in whole["content"]
    assert whole["finished"] is True and whole["state"] == "failed"
    tail = admin.get(f"{url}?offset={whole['next_offset'] - 20}").get_json()
    assert tail["content"] == whole["content"][-20:]
    assert admin.get(f"{url}?offset={whole['next_offset']}").get_json()["content"] == ""


def test_a_running_task_instances_page_follows_its_log(admin: Any, demo_dag: Any) -> None:
    from datetime import datetime

    from flux.dates import as_utc
    from flux.db import session_scope
    from flux.models import TaskInstance
    from flux.tasklog import log_path

    when = as_utc(datetime(2024, 1, 5))
    with session_scope() as session:
        session.add(TaskInstance(dag_id="web_demo", task_id="work", execution_date=when,
                                 state="running", try_number=1))
    path = log_path("web_demo", "work", when, 1)
    path.parent.mkdir(parents=True)
    path.write_text("first line\n")
    page = _text(admin.get("/dags/web_demo/tasks/work/2024-01-05T00:00:00"))
    assert 'data-follow="true"' in page and "log.js" in page
    offset = int(re.search(r'data-offset="(\d+)"', page).group(1))
    with path.open("a") as handle:
        handle.write("second line\n")
    more = admin.get(f"/dags/web_demo/tasks/work/2024-01-05T00:00:00/log/1?offset={offset}").get_json()
    assert more["content"] == "second line\n" and more["finished"] is False


def test_connections_page_never_shows_passwords(admin: Any, monkeypatch: Any) -> None:
    from flux.connections import ConnectionInfo, add_connection

    add_connection(ConnectionInfo(conn_id="warehouse", conn_type="mysql", host="db.example",
                                  port=3306, login="etl", password="hunter2-secret",
                                  extra={"charset": "utf8mb4", "api_key": "key-material-123"}))
    monkeypatch.setenv("FLUX_CONN_FROM_ENV", "postgres://bob:env-password-456@pg.example:5432/x")
    page = _text(admin.get("/connections"))
    assert "warehouse" in page and "db.example" in page and "etl" in page and "utf8mb4" in page
    assert "from_env" in page and "pg.example" in page
    for secret in ("hunter2-secret", "key-material-123", "env-password-456"):
        assert secret not in page


def test_plugins_page_shows_what_flux_plugins_shows(admin: Any) -> None:
    from flux.plugins import get_plugin_manager

    page = _text(admin.get("/plugins"))
    for row in get_plugin_manager().describe():
        assert f"<td>{html.escape(row['name'])}</td>" in page
    assert "webserver" in page and "users" in page  # flux-web's own commands


def test_audit_log_lists_actions_with_the_user(admin: Any, demo_runs: Any) -> None:
    admin.post("/dags/web_demo/paused", {"paused": "true"})
    admin.post("/dags/web_demo/tasks/end/2024-01-01T00:00:00/mark", {"state": "success"})
    page = _text(admin.get("/audit"))
    rows = re.findall(r"<tr><td>[^<]+</td><td>([^<]+)</td><td>([^<]*)</td><td>([^<]*)</td>", page)
    assert rows[:2] == [("mark_success", "alice", "web_demo"), ("pause", "alice", "web_demo")]
    filtered = _text(admin.get("/audit?event=pause"))
    assert "mark_success" not in filtered and ">pause<" in filtered


def test_health_reports_the_database(anonymous: Any) -> None:
    assert anonymous.get("/health").status_code == 200


def test_the_static_files_ship_with_the_package() -> None:
    import flux_web

    static = Path(flux_web.__file__).parent / "static"
    for name in ("vendor/dagre.min.js", "vendor/chart.umd.min.js", "vendor/dagre.LICENSE",
                 "vendor/chart.js.LICENSE.md", "vendor/README.md", "graph.js", "charts.js"):
        assert (static / name).stat().st_size > 0, name
    readme = (static / "vendor" / "README.md").read_text()
    assert "3.1.3" in readme and "4.6.1" in readme


def test_every_template_and_static_file_is_declared_package_data() -> None:
    import tomllib

    import flux_web

    package = Path(flux_web.__file__).parent
    pyproject = package.parents[1] / "pyproject.toml"
    patterns = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]["flux_web"]
    files = [p.relative_to(package).as_posix() for folder in ("templates", "static")
             for p in (package / folder).rglob("*") if p.is_file()]
    assert len(files) > 20
    # setuptools globs: `*` never crosses a folder
    regexes = [re.compile(re.escape(p).replace(r"\*", "[^/]*") + "$") for p in patterns]
    missing = [f for f in files if not any(r.match(f) for r in regexes)]
    assert missing == []
