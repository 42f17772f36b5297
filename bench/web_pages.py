"""How long do the web pages take at scale? (Target: under 300 ms each.)

Builds a metadata database with 1,000 DAGs (25 runs each, so the DAG list has run counts to
show) and one DAG of 100 tasks with 60 runs (6,000 task instances), then times full requests
(sign-in check, queries, rendering) of:

- the DAG list, 100 DAGs a page (the default) and all 1,000 on one page;
- the tree view of the 100-task DAG over 60 dates;
- the JSON API's DAG list;

first through Flask's test client (no network), then over HTTP through waitress. Prints the
median and the slowest of ``--runs`` requests after 2 warm-ups.

    python bench/web_pages.py [--runs 20] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

DAGS = 1000
RUNS_PER_DAG = 25
TREE_TASKS = 100
TREE_DATES = 60

TREE_DAG = '''
from datetime import datetime
from flux import DAG
from flux.operators import EmptyOperator

# 11 chains of 9 tasks joined by a last task: 100 tasks, 100 rows in the tree view.
with DAG("big_tree", start_date=datetime(2024, 1, 1), schedule_interval="@daily") as dag:
    end = EmptyOperator(task_id="end")
    for chain in range(11):
        previous = None
        for step in range(9):
            task = EmptyOperator(task_id=f"c{chain:02d}_s{step}")
            if previous is not None:
                previous >> task
            previous = task
        previous >> end
'''


def fill(home: Path) -> None:
    """Write the DAG file and the rows (bulk inserts through SQLAlchemy Core: any database)."""
    from sqlalchemy import insert

    from flux.dagbag import DagBag
    from flux.dates import as_utc
    from flux.db import get_engine
    from flux.models import DagModel, DagRun, ImportErrorRecord, TaskInstance

    dags = home / "dags"
    dags.mkdir()
    (dags / "big_tree.py").write_text(TREE_DAG)
    DagBag(dags).sync_to_db()
    start = as_utc(datetime(2024, 1, 1))
    states = ("success", "success", "success", "failed", "running")
    with get_engine().begin() as conn:
        conn.execute(insert(DagModel), [
            {"dag_id": f"dag_{n:04d}", "fileloc": str(dags / f"dag_{n:04d}.py"), "owners": "bench",
             "schedule": "@daily", "is_paused": n % 7 == 0, "is_active": True,
             "next_dagrun": start + timedelta(days=RUNS_PER_DAG), "tags": '["bench"]',
             "description": f"benchmark DAG number {n}"}
            for n in range(DAGS)])
        conn.execute(insert(DagRun), [
            {"dag_id": f"dag_{n:04d}", "run_id": f"scheduled__{r}", "run_type": "scheduled",
             "execution_date": start + timedelta(days=r), "state": states[(n + r) % 5],
             "external_trigger": False}
            for n in range(DAGS) for r in range(RUNS_PER_DAG)])
        conn.execute(insert(ImportErrorRecord), [
            {"filename": str(dags / f"broken_{n}.py"), "timestamp": start,
             "stacktrace": "Traceback (most recent call last):\nModuleNotFoundError: no module x"}
            for n in range(3)])
        task_ids = ["end"] + [f"c{c:02d}_s{s}" for c in range(11) for s in range(9)]
        conn.execute(insert(DagRun), [
            {"dag_id": "big_tree", "run_id": f"scheduled__{d}", "run_type": "scheduled",
             "execution_date": start + timedelta(days=d), "state": "success",
             "external_trigger": False} for d in range(TREE_DATES)])
        conn.execute(insert(TaskInstance), [
            {"dag_id": "big_tree", "task_id": task_id, "execution_date": start + timedelta(days=d),
             "state": states[(d + i) % 5], "try_number": 1, "max_tries": 0, "priority_weight": 1,
             "pool_slots": 1, "duration": 1.5}
            for d in range(TREE_DATES) for i, task_id in enumerate(task_ids)])


def measure(fetch: Callable[[], None], runs: int) -> tuple[float, float]:
    for _ in range(2):
        fetch()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fetch()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, max(times) * 1000


PAGES = [
    ("DAG list, 100 a page (of 1,000)", "/dags"),
    ("DAG list, all 1,000 on one page", "/dags?page_size=1000"),
    ("tree view, 100 tasks x 60 dates", "/dags/big_tree/tree?num_runs=60"),
    ("API DAG list, 100 (of 1,000)", "/api/v1/dags"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database-url", default=None,
                        help="an empty database to fill (default: SQLite in a temporary FLUX_HOME)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="flux-bench-web-"))
    os.environ["FLUX_HOME"] = str(home)
    if args.database_url:
        os.environ["FLUX_DATABASE_URL"] = args.database_url
    else:
        os.environ.pop("FLUX_DATABASE_URL", None)
    started = time.perf_counter()
    fill(home)
    print(f"filled in {time.perf_counter() - started:.1f} s: {DAGS} DAGs x {RUNS_PER_DAG} runs, "
          f"one DAG of {TREE_TASKS} tasks x {TREE_DATES} dates")

    from flux_web.app import create_app
    from flux_web.server import BackgroundServer
    from flux_web.users import create_user

    create_user("bench", "bench-password", "viewer")
    app = create_app()
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "bench", "password": "bench-password",
                                "csrf_token": token.group(1) if token else ""})

    print(f"\n{'page':<36} {'test client':>22} {'HTTP (waitress)':>22}")
    print(f"{'':<36} {'median':>10} {'max':>11} {'median':>10} {'max':>11}")
    import urllib.request

    cookie = client.get_cookie("flux_session")
    assert cookie is not None, "signing in failed"
    with BackgroundServer(app, threads=4) as base:
        for label, url in PAGES:
            def in_process(url: str = url) -> None:
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
                response.get_data()

            def over_http(url: str = url) -> None:
                request = urllib.request.Request(base + url,
                                                 headers={"Cookie": f"flux_session={cookie.value}"})
                with urllib.request.urlopen(request) as response:
                    assert response.status == 200
                    response.read()

            local = measure(in_process, args.runs)
            http = measure(over_http, args.runs)
            print(f"{label:<36} {local[0]:>8.1f}ms {local[1]:>9.1f}ms {http[0]:>8.1f}ms {http[1]:>9.1f}ms")


if __name__ == "__main__":
    main()
