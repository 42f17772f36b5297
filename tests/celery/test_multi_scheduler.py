"""Several schedulers on one server database: row locks (SKIP LOCKED) that really reach the
server, the refusal where rows cannot be locked, and two schedulers racing on 500 runs."""

from __future__ import annotations

import textwrap
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from celery_harness import Cluster, RedisServer, wait_for, write_dag
from sqlalchemy import event, func, select, text

from flux import jobs
from flux.dates import UTC
from flux.db import get_engine, session_scope
from flux.exceptions import SchedulerError
from flux.models import DagRun, Pool, TaskInstance
from flux.scheduler import Scheduler, database_locks_rows, skip_locked_supported
from flux.state import State

POOL_DAG = textwrap.dedent("""
    from datetime import datetime
    from flux import DAG
    from flux.operators import PythonOperator

    with DAG("locked", start_date=datetime(2024, 1, 1), end_date=datetime(2024, 1, 3),
             schedule_interval="@daily") as dag:
        PythonOperator(task_id="a", python_callable=lambda: 1, pool="tight")
        PythonOperator(task_id="b", python_callable=lambda: 2)
""")


def test_which_servers_skip_locked_rows() -> None:
    assert skip_locked_supported("mysql", (10, 11, 19, "MariaDB"), is_mariadb=True)
    assert skip_locked_supported("mysql", (10, 6, 0), is_mariadb=True)
    assert not skip_locked_supported("mysql", (10, 5, 22), is_mariadb=True)
    assert skip_locked_supported("mysql", (8, 0, 1), is_mariadb=False)
    assert not skip_locked_supported("mysql", (5, 7, 44), is_mariadb=False)
    assert skip_locked_supported("postgresql", (15, 2), is_mariadb=False)
    assert not skip_locked_supported("postgresql", (9, 4), is_mariadb=False)
    assert not skip_locked_supported("sqlite", (3, 45, 0), is_mariadb=False)


def _capture_scheduler_sql(tmp_path: Path) -> list[str]:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "locked.py").write_text(POOL_DAG)
    with session_scope() as session:
        session.add(Pool(pool="tight", slots=1))
    statements: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        scheduler = Scheduler(subdir=str(folder), executor="sequential", num_runs=12,
                              loop_interval=0.05)
        scheduler.run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert scheduler.row_locks
    with session_scope() as session:
        assert session.execute(select(func.count()).select_from(TaskInstance).where(
            TaskInstance.state == State.SUCCESS)).scalar() == 6
    return statements


def _locking(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if "FOR UPDATE" in s and f"FROM {table}" in s.replace("`", "")
            .replace('"', "")]


def test_the_row_locks_reach_mariadb(server_db: str, tmp_path: Path) -> None:
    engine = get_engine()
    with engine.connect():
        pass
    assert engine.dialect.is_mariadb and engine.dialect.server_version_info >= (10, 6)
    # MariaDB has SKIP LOCKED but no FOR UPDATE OF: the statements must not rely on it
    assert not engine.dialect.supports_for_update_of
    statements = _capture_scheduler_sql(tmp_path)
    assert all(s.rstrip().endswith("FOR UPDATE SKIP LOCKED") for s in _locking(statements, "dag "))
    assert _locking(statements, "dag ") and _locking(statements, "dag_run")
    assert all("SKIP LOCKED" in s for s in _locking(statements, "dag_run"))
    pools = _locking(statements, "slot_pool")
    assert pools and not any("SKIP LOCKED" in s for s in pools)  # pool slots are waited for
    assert not any(" OF " in s for s in _locking(statements, "dag_run"))
    # a pass reads what other schedulers committed, not a snapshot from its first statement
    scheduler = Scheduler(subdir=str(tmp_path / "dags"), executor="sequential")
    scheduler.row_locks = True
    with scheduler._session() as session:
        assert session.execute(text("SELECT @@tx_isolation")).scalar() == "READ-COMMITTED"


def test_the_row_locks_reach_postgresql(postgres_url: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from flux import config, db

    db.dispose_all()
    monkeypatch.setenv("FLUX_DATABASE_URL", postgres_url)
    config.reset_config()
    statements = _capture_scheduler_sql(tmp_path)
    assert _locking(statements, "dag_run")
    assert all(s.rstrip().endswith("FOR UPDATE SKIP LOCKED") for s in _locking(statements, "dag_run"))


def test_a_second_scheduler_is_refused_where_rows_cannot_be_locked(
        server_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flux.scheduler

    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "locked.py").write_text(POOL_DAG.replace(', pool="tight"', ""))
    assert database_locks_rows()
    other = jobs.start_job("scheduler")
    try:
        # MariaDB 10.11 locks rows: a second scheduler is welcome
        Scheduler(subdir=str(folder), executor="sequential", num_runs=1).run()
        # a server that cannot (an older MariaDB, say) must not get a second one
        monkeypatch.setattr(flux.scheduler, "database_locks_rows", lambda url=None: False)
        with pytest.raises(SchedulerError, match=r"cannot lock rows with SKIP LOCKED.*MariaDB 10\.6"):
            Scheduler(subdir=str(folder), executor="sequential", num_runs=1).run()
    finally:
        jobs.end_job(other, "success")
    Scheduler(subdir=str(folder), executor="sequential", num_runs=1).run()  # alone again: fine


RACE_DAG = textwrap.dedent("""
    import time
    from datetime import datetime
    import redis
    from flux import DAG
    from flux.operators import PythonOperator

    def work(ti, **context):
        if ti.task.pool == "tight":
            r = redis.Redis(host="127.0.0.1", port={port}, db=5)
            r.rpush("peaks", r.incr("in_pool"))
            time.sleep(0.02)
            r.decr("in_pool")
        with open({record!r}, "a") as fh:
            fh.write(f"{{ti.dag_id}} {{ti.execution_date.isoformat()}} {{ti.try_number}}\\n")

    with DAG("race_{n}", start_date=datetime(2024, 1, 1), end_date=datetime(2024, 1, 5, 3),
             schedule_interval="@hourly", max_active_runs=100) as dag:
        PythonOperator(task_id="t", python_callable=work, pool={pool!r})
""")


@pytest.mark.slow
def test_two_schedulers_race_on_500_runs(cluster: Cluster, redis_server: RedisServer) -> None:
    """5 DAGs x 100 runs; two of the DAGs share a pool of 3 slots. Every task instance is sent
    once (one message each), runs once, and the pool never has more than 3 at once."""
    record = cluster.root.parent / "race.record"
    for n in range(5):
        write_dag(cluster, f"race_{n}", RACE_DAG.format(
            port=redis_server.port, record=str(record), n=n, pool="tight" if n < 2 else None))
    with session_scope() as session:
        session.add(Pool(pool="tight", slots=3))
    workers = [cluster.worker("w1", "-c", "4"), cluster.worker("w2", "-c", "4")]
    schedulers = [cluster.start(f"s{i}", "scheduler", "--executor", "celery", "--parallelism", "12")
                  for i in (1, 2)]

    def finished() -> int:
        with session_scope() as session:
            return session.execute(select(func.count()).select_from(DagRun).where(
                DagRun.state == "success")).scalar()

    assert wait_for(lambda: finished() == 500 or not all(s.alive() for s in schedulers), 400,
                    every=1), [s.text()[-3000:] for s in schedulers]
    for sched in schedulers:
        assert sched.stop() == 0, sched.text()[-3000:]
        assert "Traceback" not in sched.text()
    with session_scope() as session:
        tis = session.execute(select(TaskInstance.state, TaskInstance.try_number)).all()
        runs = session.execute(select(DagRun.dag_id, DagRun.execution_date)).all()
    assert len(runs) == 500 and len(set(runs)) == 500
    assert Counter(tis) == {(State.SUCCESS, 1): 500}
    ran = Counter(line for line in record.read_text().splitlines())
    assert len(ran) == 500 and set(ran.values()) == {1}
    # one message per task instance: none was queued (sent) twice
    received = sum(w.text().count("] received") for w in workers)
    assert received == 500
    peaks = [int(v) for v in redis_server.client(5).lrange("peaks", 0, -1)]
    assert len(peaks) == 200 and max(peaks) <= 3
    with session_scope() as session:  # both schedulers queued some of them
        assert len(set(session.execute(select(TaskInstance.job_id)).scalars())) == 2


def test_pool_slots_are_counted_under_a_lock(server_db: str, tmp_path: Path) -> None:
    """Scheduler B counts a pool's free slots only once scheduler A's pass, which took the last
    slot, has committed: B waits on the pool's row, then finds the pool full."""
    import threading

    from flux.transitions import transition

    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "pooled.py").write_text(textwrap.dedent("""
        from datetime import datetime
        from flux import DAG
        from flux.operators import PythonOperator

        with DAG("pooled", start_date=datetime(2024, 1, 1), schedule_interval=None) as dag:
            PythonOperator(task_id="a", python_callable=lambda: 1, pool="one")
            PythonOperator(task_id="b", python_callable=lambda: 2, pool="one")
    """))
    day = datetime(2024, 1, 1, tzinfo=UTC)
    with session_scope() as session:
        session.add(Pool(pool="one", slots=1))
        for task_id in ("a", "b"):
            session.add(TaskInstance(dag_id="pooled", task_id=task_id, execution_date=day,
                                     state=None, try_number=0, max_tries=0, pool="one"))
    first, second = (Scheduler(subdir=str(folder), executor="sequential") for _ in range(2))
    for scheduler in (first, second):
        scheduler.row_locks = True
        scheduler.folder.refresh()
    dags = first.folder.dags

    def ready(session):  # type: ignore[no-untyped-def]
        return [(ti.key, ti) for ti in session.execute(select(TaskInstance).where(
            TaskInstance.state.is_(None)).order_by(TaskInstance.task_id)).scalars()]

    seen: dict[str, object] = {}

    def second_pass() -> None:
        with second._session() as session:
            candidates = ready(session)
            seen["candidates"] = len(candidates)
            seen["chosen"] = second._within_limits(session, candidates, dags)

    with first._session() as session:
        chosen = first._within_limits(session, ready(session), dags)
        assert [key[1] for key, _ in chosen] == ["a"]
        assert transition(session, chosen[0][1], State.QUEUED, expect_state=None, expect_try=0)
        thread = threading.Thread(target=second_pass)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waiting for the pool's row
    thread.join(timeout=60)
    assert seen == {"candidates": 2, "chosen": []}  # it saw both as ready, and no free slot
