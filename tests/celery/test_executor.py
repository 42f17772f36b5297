"""The CeleryExecutor with real workers: backfills through Redis and RabbitMQ, retries, logs
written on the worker's machine and read from another, an unknown queue."""

from __future__ import annotations

import socket
import textwrap
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from celery_harness import RABBITMQ_URL, Cluster, free_port, port_answers, write_dag
from sqlalchemy import select

from flux.dagbag import DagBag
from flux.dates import UTC
from flux.db import session_scope
from flux.models import TaskInstance
from flux.state import State

DAY1 = datetime(2024, 1, 1, tzinfo=UTC)

FAN_DAG = textwrap.dedent("""
    from datetime import datetime
    from flux import DAG
    from flux.operators import PythonOperator

    def work(ti, **context):
        print("working on", ti.task_id, "try", ti.try_number)
        return ti.task_id

    def flaky(ti, **context):
        raise RuntimeError(f"broken on try {ti.try_number}")

    with DAG("fan", start_date=datetime(2024, 1, 1), schedule_interval="@daily") as dag:
        first = PythonOperator(task_id="first", python_callable=work)
        for i in range(4):
            first >> PythonOperator(task_id=f"t{i}", python_callable=work)
        PythonOperator(task_id="flaky", python_callable=flaky, retries=1, retry_delay=0)
        PythonOperator(task_id="elsewhere", python_callable=work, queue="{queue}")
""")


def backfill(path: Path, dag_id: str, end: datetime = DAY1):  # type: ignore[no-untyped-def]
    from flux.backfill import BackfillJob

    dag = DagBag(str(path)).dags[dag_id]
    return BackfillJob(dag, DAY1, end, executor="celery", parallelism=8).run()


def instances(dag_id: str) -> dict[str, TaskInstance]:
    with session_scope() as session:
        return {ti.task_id: ti for ti in session.execute(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id)).scalars()}


def test_backfill_runs_on_workers_of_their_queues(cluster: Cluster) -> None:
    path = write_dag(cluster, "fan", FAN_DAG.replace("{queue}", "special"))
    log_port = free_port()
    cluster.worker("w1", "-c", "2", log_port=log_port)
    cluster.worker("w2", "-q", "special", "-c", "1")
    result = backfill(path, "fan")
    tis = instances("fan")
    assert {t: ti.state for t, ti in tis.items()} == {
        "first": "success", "t0": "success", "t1": "success", "t2": "success", "t3": "success",
        "elsewhere": "success", "flaky": "failed"}
    assert result.counts == {"success": 6, "failed": 1}
    assert tis["flaky"].try_number == 2  # retried once, through the broker
    assert "broken on try 2" in tis["flaky"].note
    home = cluster.procs[0].home
    # each try's log is on the machine that ran it: the special queue's task on w2 only
    assert (home / "logs" / "fan" / "first" / "2024-01-01T00:00:00" / "1.log").exists()
    special = cluster.procs[1].home / "logs" / "fan" / "elsewhere" / "2024-01-01T00:00:00" / "1.log"
    assert special.exists()
    assert not (home / "logs" / "fan" / "elsewhere").exists()
    assert "working on elsewhere try 1" in special.read_text()


def test_a_log_written_on_a_worker_is_read_from_another_machine(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    from flux.config import get_config
    from flux_celery import fetch_remote_log
    from flux_celery.errors import RemoteLogError

    path = write_dag(cluster, "fan", FAN_DAG.replace("{queue}", "default"))
    log_port = free_port()
    worker = cluster.worker("w1", "-c", "2", log_port=log_port)
    assert port_answers(log_port)
    backfill(path, "fan")
    ti = instances("fan")["flaky"]
    assert ti.hostname == socket.gethostname()
    # this process is the "webserver machine": its own log folder has nothing
    assert not (get_config().log_folder / "fan").exists()
    second = fetch_remote_log(ti.hostname, "fan", "flaky", DAY1, 2, port=log_port)
    assert second.exists and "broken on try 2" in second.text
    assert second.size == len(second.text.encode())
    tail = fetch_remote_log(ti.hostname, "fan", "flaky", DAY1, 2, port=log_port, offset=10)
    assert tail.text == second.text[10:] and tail.offset == 10
    on_disk = worker.home / "logs" / "fan" / "flaky" / "2024-01-01T00:00:00" / "1.log"
    assert fetch_remote_log(ti.hostname, "fan", "flaky", DAY1, 1, port=log_port).text == \
        on_disk.read_text()
    assert not fetch_remote_log(ti.hostname, "fan", "flaky", DAY1, 3, port=log_port).exists
    # another installation's secret opens nothing
    from flux import config

    monkeypatch.setenv("FLUX__WEBSERVER__SECRET_KEY", "not-the-installation-secret")
    config.reset_config()
    with pytest.raises(RemoteLogError, match="403 bad log token signature"):
        fetch_remote_log(ti.hostname, "fan", "flaky", DAY1, 2, port=log_port)


def test_rabbitmq_broker(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same through RabbitMQ (kombu's amqp transport), with a queue of the test's own."""
    from flux import config

    if not port_answers(5672):
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672")
    queue = f"flux_test_{uuid.uuid4().hex[:8]}"
    amqp = {"FLUX__CELERY__BROKER_URL": RABBITMQ_URL, "FLUX__CELERY__DEFAULT_QUEUE": queue}
    for name, value in amqp.items():
        monkeypatch.setenv(name, value)
    config.reset_config()
    path = write_dag(cluster, "fan", FAN_DAG.replace("{queue}", queue))
    cluster.worker("w1", "-c", "2", env=amqp)
    result = backfill(path, "fan")
    assert result.counts == {"success": 6, "failed": 1}
    assert instances("fan")["flaky"].try_number == 2


def test_unknown_queue_fails_the_try_after_queued_timeout(cluster: Cluster,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from flux import config

    monkeypatch.setenv("FLUX__CELERY__QUEUED_TIMEOUT", "3")
    config.reset_config()
    path = write_dag(cluster, "fan", FAN_DAG.replace("{queue}", "nobody-listens"))
    cluster.worker("w1", "-c", "2")
    result = backfill(path, "fan")
    tis = instances("fan")
    assert tis["elsewhere"].state == State.FAILED
    assert "queue 'nobody-listens'" in tis["elsewhere"].note
    assert "flux worker -q nobody-listens" in tis["elsewhere"].note
    assert result.counts == {"success": 5, "failed": 2}  # the others ran as usual
