"""Regenerate the web interface's screenshots in docs/screenshots/ (``nox -s screenshots``).

Builds a throwaway FLUX_HOME with the repository's example DAGs, a demo DAG whose runs include
failures, and a broken DAG file; runs them with ``flux backfill``; starts the web server on it and
saves a PNG of each page with headless chromium (``/usr/bin/chromium``, driven by Playwright;
Playwright's own browser downloads are never used).

    python docs/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
USER, PASSWORD = "admin", "screenshots-only"

DEMO_DAG = '''
"""A small ETL: extract three sources in parallel, transform, load, report.

The load fails on the 3rd and the 6th of the month (the warehouse is "down"), so the views have
something to show.
"""
import random
import time
from datetime import datetime, timedelta

from flux import DAG
from flux.exceptions import TaskFailed
from flux.operators import EmptyOperator, PythonOperator


def pause(seconds, ds):
    random.seed(ds)
    time.sleep(seconds * (0.5 + random.random()))
    print(f"done with {ds}")


def load(ds, table):
    time.sleep(0.3)
    if ds.endswith(("-03", "-06")):
        # TaskFailed fails the try with this message alone (no traceback in the log)
        raise TaskFailed(f"warehouse unreachable while loading {table} for {ds}")
    print(f"loaded {table} for {ds}")


with DAG("etl_demo", start_date=datetime(2024, 1, 1), schedule_interval="@daily",
         description="Extract three sources, transform, load into the warehouse, report",
         default_args={"owner": "data-team"}, tags=["demo", "etl"]) as dag:
    start = EmptyOperator(task_id="start")
    extracts = [PythonOperator(task_id=f"extract_{name}", python_callable=pause,
                               op_kwargs={"seconds": seconds})
                for name, seconds in (("orders", 0.6), ("customers", 0.3), ("stock", 0.9))]
    transform = PythonOperator(task_id="transform", python_callable=pause, op_kwargs={"seconds": 0.5})
    store = PythonOperator(task_id="load", python_callable=load,
                           op_kwargs={"table": "sales_{{ ds_nodash }}"})
    report = EmptyOperator(task_id="report")
    start >> extracts
    extracts >> transform >> store >> report
'''

BROKEN_DAG = '''
from flux import DAG
from flux.operators import PythonOperator

import pandas_that_is_not_installed  # the banner on the DAG list shows this traceback
'''


def flux(home: Path, *args: str, stdin: str | None = None, check: bool = True) -> None:
    env = {**os.environ, "FLUX_HOME": str(home)}
    env.pop("FLUX_DATABASE_URL", None)
    result = subprocess.run([sys.executable, "-m", "flux.cli.main", *args], env=env, input=stdin,
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"flux {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def prepare(home: Path) -> None:
    dags = home / "dags"
    dags.mkdir(parents=True)
    for example in sorted((ROOT / "examples" / "dags").glob("*.py")):
        shutil.copy(example, dags / example.name)
    (dags / "etl_demo.py").write_text(DEMO_DAG)
    (dags / "reports_broken.py").write_text(BROKEN_DAG)
    flux(home, "users", "create", "-u", USER, "-r", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    flux(home, "connections", "add", "warehouse", "--uri",
         "mysql://etl:not-shown@db.example.com:3306/sales?charset=utf8mb4")
    flux(home, "backfill", "etl_demo", "-s", "2024-01-01", "-e", "2024-01-08", check=False)
    flux(home, "backfill", "example_2", "-s", "2014-09-01", "-e", "2014-09-05", check=False)
    flux(home, "dags", "list")  # records every DAG and the broken file
    flux(home, "dags", "pause", "tutorial")
    flux(home, "dags", "trigger", "example_2", "-c", '{"reason": "re-run after a fix"}')


PAGES = [
    ("dags", "/dags"),
    ("tree", "/dags/etl_demo/tree"),
    ("graph", "/dags/etl_demo/graph?execution_date=2024-01-03"),
    ("gantt", "/dags/etl_demo/gantt?execution_date=2024-01-02"),
    ("durations", "/dags/etl_demo/durations"),
    ("task_instance", "/dags/etl_demo/tasks/load/2024-01-03T00:00:00"),
    ("clear", "/dags/etl_demo/clear?task_id=load&execution_date=2024-01-03&downstream=true&future=true"),
    ("trigger", "/dags/etl_demo/trigger"),
    ("code", "/dags/etl_demo/code"),
    ("connections", "/connections"),
    ("plugins", "/plugins"),
    ("audit", "/audit"),
]


def shoot(home: Path, out: Path, chromium: str) -> list[Path]:
    os.environ["FLUX_HOME"] = str(home)
    os.environ.pop("FLUX_DATABASE_URL", None)
    from playwright.sync_api import sync_playwright

    from flux_web.app import create_app
    from flux_web.server import BackgroundServer

    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with BackgroundServer(create_app()) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 860}, device_scale_factor=1)
        page.goto(f"{base}/login")
        saved.append(_save(page, out / "login.png"))
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/dags")
        for name, url in PAGES:
            if name == "audit":  # an action taken in the web UI, for the audit log to show
                page.goto(f"{base}/dags/etl_demo/tasks/load/2024-01-06T00:00:00")
                page.click("#mark-success")
                page.wait_for_selector(".flash")
            page.goto(base + url)
            if name == "graph":
                page.wait_for_selector("#graph svg g.node")
            if name in ("gantt", "durations"):
                page.wait_for_selector(f"#{name}-chart[data-ready=true]")
            saved.append(_save(page, out / f"{name}.png"))
        browser.close()
    return saved


def _save(page: object, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=False)  # type: ignore[attr-defined]
    print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        raise SystemExit(f"{args.chromium} not found: apt-get install -y chromium chromium-driver")
    home = Path(tempfile.mkdtemp(prefix="flux-screenshots-"))
    try:
        prepare(home)
        shoot(home, args.out.resolve(), args.chromium)
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
