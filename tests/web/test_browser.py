"""End to end in a real browser: headless Debian chromium driven by Playwright.

Run with ``-m browser``; skipped where /usr/bin/chromium or the playwright package is missing
(Playwright's own browser downloads are never used).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from .conftest import ADMIN, VIEWER

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live(app: Any) -> Iterator[str]:
    from flux_web.server import BackgroundServer

    with BackgroundServer(app) as url:
        yield url


@pytest.fixture
def page(chromium: Any, live: str) -> Iterator[Any]:
    context = chromium.new_context(base_url=live, viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    tab.problems = problems
    yield tab
    context.close()


def _sign_in(page: Any, username: str, password: str) -> None:
    page.goto("/dags")
    assert "/login?next=/dags" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dags")


def test_sign_in_tree_log_clear_and_run_again(page: Any, demo_runs: Any, marker: Path,
                                              flux_env: Path) -> None:
    _sign_in(page, *ADMIN)
    page.click("a.dag-link:text('web_demo')")
    page.wait_for_url("**/dags/web_demo/tree")
    failed = page.locator('tr[data-task="work"] a.sq.s-failed')
    assert failed.count() == 3
    failed.nth(1).click()
    page.wait_for_url("**/dags/web_demo/tasks/work/2024-01-02T00:00:00")
    log = page.locator("#log").inner_text()
    assert "working on day 2024-01-02" in log
    assert "ValueError: the marker file is missing" in log
    assert "<script>alert('log')</script>" in log  # shown as text, not run
    assert page.locator("#ti-state .badge").inner_text() == "failed"

    page.click("#clear-button")
    page.wait_for_url("**/dags/web_demo/clear?**")
    rows = page.locator("#to-clear tbody tr")
    assert rows.count() == 1
    assert rows.first.inner_text().split("\t")[:2] == ["work", "2024-01-02 00:00:00"]
    page.click("#confirm-clear")
    page.wait_for_url("**/dags/web_demo/tasks/work/2024-01-02T00:00:00")
    assert "Cleared 1 task instance(s)." in page.locator(".flash").inner_text()
    assert page.locator("#ti-state .badge").inner_text() == "no state"

    marker.touch()
    result = subprocess.run(
        [sys.executable, "-m", "flux.cli.main", "run", "web_demo", "work", "2024-01-02"],
        env={**os.environ, "FLUX_HOME": str(flux_env)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr

    page.reload()
    assert page.locator("#ti-state .badge").inner_text() == "success"
    assert page.locator(".tries a").all_inner_texts() == ["try 1", "try 2"]
    assert "marker found" in page.locator("#log").inner_text()
    page.click(".tries a:text('try 1')")
    assert "the marker file is missing" in page.locator("#log").inner_text()

    page.goto("/dags/web_demo/tree")
    cells = page.locator('tr[data-task="work"] a.sq')
    assert [c.get_attribute("class") for c in cells.all()] == ["sq s-failed", "sq s-success",
                                                               "sq s-failed"]
    page.goto("/audit")
    assert "clear" in page.locator("#audit tbody tr").first.inner_text()
    assert page.problems == []


def test_graph_and_charts_are_drawn_by_the_vendored_libraries(page: Any, demo_runs: Any) -> None:
    _sign_in(page, *VIEWER)
    page.goto("/dags/web_demo/graph?execution_date=2024-01-01")
    nodes = page.locator("#graph svg g.node")
    nodes.first.wait_for()
    assert nodes.count() == 4
    assert page.locator("#graph svg path.edge").count() == 4
    states = {n.get_attribute("data-task"): n.get_attribute("data-state") for n in nodes.all()}
    assert states == {"start": "success", "extract": "success", "work": "failed", "end": ""}
    # dagre laid it out left to right: each task right of its upstream
    x = {n.get_attribute("data-task"): n.bounding_box()["x"] for n in nodes.all()}
    assert x["start"] < x["extract"] < x["work"] < x["end"]
    page.locator('#graph g.node[data-task="work"]').click()
    page.wait_for_url("**/dags/web_demo/tasks/work/2024-01-01T00:00:00")

    page.goto("/dags/web_demo/gantt?execution_date=2024-01-01")
    page.wait_for_selector("#gantt-chart[data-ready=true]")
    page.goto("/dags/web_demo/durations")
    page.wait_for_selector("#durations-chart[data-ready=true]")
    assert page.evaluate("typeof Chart") == "function"
    assert page.problems == []


def test_a_running_task_instances_log_grows_in_the_page(page: Any, demo_dag: Any) -> None:
    from flux.dates import as_utc
    from flux.db import session_scope
    from flux.models import TaskInstance
    from flux.tasklog import log_path

    when = as_utc(datetime(2024, 1, 7))
    with session_scope() as session:
        session.add(TaskInstance(dag_id="web_demo", task_id="work", execution_date=when,
                                 state="running", try_number=1))
    path = log_path("web_demo", "work", when, 1)
    path.parent.mkdir(parents=True)
    path.write_text("first line\n")
    _sign_in(page, *VIEWER)
    page.goto("/dags/web_demo/tasks/work/2024-01-07T00:00:00")
    assert page.locator("#log").inner_text().strip() == "first line"
    with path.open("a") as handle:
        handle.write("second line <b>not bold</b>\n")
    expect = pytest.importorskip("playwright.sync_api").expect
    # (expect polls from Playwright's own script world: the page's CSP forbids evaluated strings)
    expect(page.locator("#log")).to_contain_text("second line <b>not bold</b>")
    assert page.locator("#log b").count() == 0
    with session_scope() as session:
        session.get(TaskInstance, ("web_demo", "work", when)).state = "success"
    expect(page.locator("#ti-state .badge")).to_have_text("success")
    assert page.problems == []


def test_a_viewer_sees_the_pages_but_no_actions(page: Any, demo_runs: Any) -> None:
    _sign_in(page, *VIEWER)
    page.goto("/dags/web_demo/tasks/work/2024-01-01T00:00:00")
    assert page.locator("#clear-button").count() == 0
    assert page.locator("#mark-success").count() == 0
    response = page.goto("/dags/web_demo/trigger")
    assert response.status == 403
