"""The pages cost a fixed number of queries, however many DAGs, runs and tasks there are (no N+1)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from flux.dates import as_utc


@contextmanager
def counting() -> Iterator[list[str]]:
    from flux.db import get_engine

    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _fill(dags: int, runs: int, tasks: int, folder: Path, prefix: str = "gen") -> None:
    """``dags`` DAGs of ``tasks`` tasks each, every one with ``runs`` runs and task instances."""
    from flux.db import session_scope
    from flux.models import DagModel, DagRun, TaskInstance

    start = as_utc(datetime(2024, 1, 1))
    path = folder / f"{prefix}_{dags}_{tasks}.py"
    path.write_text(textwrap.dedent(f'''
        from datetime import datetime
        from flux import DAG
        from flux.operators import EmptyOperator
        for n in range({dags}):
            with DAG(f"{prefix}_{{n:04d}}", start_date=datetime(2024, 1, 1)) as dag:
                previous = None
                for t in range({tasks}):
                    task = EmptyOperator(task_id=f"t{{t:03d}}")
                    if previous is not None:
                        previous >> task
                    previous = task
            globals()[f"dag_{{n}}"] = dag
    '''))
    with session_scope() as session:
        for n in range(dags):
            dag_id = f"{prefix}_{n:04d}"
            session.add(DagModel(dag_id=dag_id, fileloc=str(path), owners="o", schedule="@daily",
                                 is_paused=False, is_active=True))
            for r in range(runs):
                when = start + timedelta(days=r)
                session.add(DagRun(dag_id=dag_id, run_id=f"scheduled__{r}", execution_date=when,
                                   state="success" if r % 3 else "failed", run_type="scheduled"))
                for t in range(tasks):
                    session.add(TaskInstance(dag_id=dag_id, task_id=f"t{t:03d}", execution_date=when,
                                             state="success", try_number=1, duration=1.0 + t))


def _count(client: Any, url: str) -> int:
    client.get(url)  # warm: the DAG file is imported once, the user looked up
    with counting() as statements:
        assert client.get(url).status_code == 200
    return len(statements)


def test_the_dag_list_costs_the_same_for_5_or_60_dags(admin: Any, flux_env: Path) -> None:
    folder = flux_env / "dags"
    folder.mkdir(exist_ok=True)
    _fill(5, 4, 1, folder, "a")
    small = _count(admin, "/dags")
    _fill(60, 4, 1, folder, "b")
    assert _count(admin, "/dags") == small
    assert small <= 6


def test_the_tree_view_costs_the_same_for_3_or_30_tasks_and_dates(admin: Any, flux_env: Path) -> None:
    folder = flux_env / "dags"
    folder.mkdir(exist_ok=True)
    _fill(1, 3, 3, folder)
    small = _count(admin, "/dags/gen_0000/tree?num_runs=30")
    from flux.db import session_scope
    from flux.models import DagModel, DagRun, TaskInstance

    with session_scope() as session:
        for model in (DagModel, DagRun, TaskInstance):
            session.query(model).delete()
    _fill(1, 30, 30, folder)
    page = admin.get("/dags/gen_0000/tree?num_runs=30").get_data(as_text=True)
    assert page.count('class="sq s-success" href=') == 900
    assert _count(admin, "/dags/gen_0000/tree?num_runs=30") == small


def test_the_api_dag_list_costs_the_same_for_5_or_60_dags(admin: Any, flux_env: Path) -> None:
    folder = flux_env / "dags"
    folder.mkdir(exist_ok=True)
    _fill(5, 2, 1, folder, "a")
    small = _count(admin, "/api/v1/dags")
    _fill(60, 2, 1, folder, "b")
    assert _count(admin, "/api/v1/dags") == small
