"""Fixtures for the web tests: a DAG folder with a demo DAG, the app, and signed-in clients.

Task instances are run with Flux's own task runner, so states, tries and log files are the real
ones; nothing of the database is mocked.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

ADMIN = ("alice", "alice-password")
VIEWER = ("victor", "victor-password")
DATES = [datetime(2024, 1, day) for day in (1, 2, 3)]

DEMO_DAG = '''
"""The web tests' DAG: `work` fails until the marker file exists."""
import os
from datetime import datetime

from flux import DAG
from flux.operators import EmptyOperator, PythonOperator

MARKER = {marker!r}


def work(ds, params, label):
    print("working on " + label)
    print("<script>alert('log')</script>")
    if not os.path.exists(params["marker"]):
        raise ValueError("the marker file is missing")
    print("marker found")


with DAG("web_demo", start_date=datetime(2024, 1, 1), schedule_interval="@daily",
         description="Demo <b>DAG</b> <script>alert('description')</script>",
         default_args={{"owner": "carol"}}, tags=["demo"]) as dag:
    start = EmptyOperator(task_id="start")
    extract = EmptyOperator(task_id="extract")
    job = PythonOperator(task_id="work", python_callable=work, params={{"marker": MARKER}},
                         op_kwargs={{"label": "day {{{{ ds }}}}"}})
    end = EmptyOperator(task_id="end")
    start >> extract >> job >> end
    start >> end
'''

BROKEN_DAG = "from flux import DAG\nimport module_that_does_not_exist_42\n"


@dataclass
class Client:
    """A signed-in test client and its session's CSRF token."""

    http: Any
    csrf: str
    username: str

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.http.get(url, **kwargs)

    def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf)
        return self.http.post(url, data=data, **kwargs)

    def api(self, method: str, url: str, body: Any = None) -> Any:
        return self.http.open(url, method=method, json=body, headers={"X-CSRF-Token": self.csrf})


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


@pytest.fixture
def dags_folder(flux_env: Path) -> Path:
    folder = flux_env / "dags"
    folder.mkdir(exist_ok=True)
    (folder / "web_demo.py").write_text(textwrap.dedent(
        DEMO_DAG.format(marker=str(flux_env / "marker"))))
    return folder


@pytest.fixture
def marker(flux_env: Path) -> Path:
    """Create this file to make the demo DAG's `work` task succeed."""
    return flux_env / "marker"


@pytest.fixture
def demo_dag(dags_folder: Path) -> Any:
    """The demo DAG, recorded in the ``dag`` table."""
    from flux.dagbag import DagBag

    bag = DagBag(dags_folder)
    bag.sync_to_db()
    return bag.get_dag("web_demo")


@pytest.fixture
def run_ti() -> Callable[..., Any]:
    """Run one task instance with Flux's task runner: ``run_ti(dag, task_id, date)``."""
    from flux.taskrunner import RunOptions, run_task_instance

    def run(dag: Any, task_id: str, when: datetime, **options: Any) -> Any:
        options.setdefault("ignore_dependencies", True)
        return run_task_instance(dag.get_task(task_id), when, RunOptions(**options))

    return run


@pytest.fixture
def make_run() -> Callable[..., None]:
    """Record a DAG run: ``make_run(dag_id, date, state)``."""
    from flux.db import session_scope
    from flux.models import DagRun

    def make(dag_id: str, when: datetime, state: str = "success", run_type: str = "scheduled") -> None:
        from flux.dates import as_utc

        when = as_utc(when)
        with session_scope() as session:
            session.add(DagRun(dag_id=dag_id, run_id=f"{run_type}__{when.isoformat()}",
                               execution_date=when, state=state, run_type=run_type))

    return make


@pytest.fixture
def demo_runs(demo_dag: Any, run_ti: Callable[..., Any], make_run: Callable[..., None]) -> Any:
    """Three runs of the demo DAG: start, extract ran; `work` failed on each date (the marker is
    missing); end has no state."""
    for when in DATES:
        make_run("web_demo", when, "failed")
        for task_id in ("start", "extract", "work"):
            run_ti(demo_dag, task_id, when)
    return demo_dag


@pytest.fixture
def users(flux_env: Path) -> None:
    from flux_web.users import create_user

    create_user(ADMIN[0], ADMIN[1], "admin")
    create_user(VIEWER[0], VIEWER[1], "viewer")


@pytest.fixture
def app(flux_env: Path, users: None) -> Iterator[Any]:
    from flux_web.app import create_app
    from flux_web.dagcache import get_cache

    get_cache().clear()
    application = create_app({"TESTING": True})
    yield application
    get_cache().clear()


def sign_in(app: Any, username: str, password: str) -> Client:
    http = app.test_client()
    token = csrf_of(http.get("/login").get_data(as_text=True))
    response = http.post("/login", data={"username": username, "password": password,
                                         "csrf_token": token, "next": "/dags"})
    assert response.status_code == 302, response.get_data(as_text=True)
    # Signing in starts a new session with a new token: read it from a page.
    page = http.get("/dags").get_data(as_text=True)
    return Client(http, csrf_of(page), username)


@pytest.fixture
def admin(app: Any) -> Client:
    return sign_in(app, *ADMIN)


@pytest.fixture
def viewer(app: Any) -> Client:
    return sign_in(app, *VIEWER)


@pytest.fixture
def anonymous(app: Any) -> Any:
    return app.test_client()
