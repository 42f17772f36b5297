"""Fan-out through Celery: 1,000 no-op task instances (100 tasks x 10 dates), backfilled once with
the CeleryExecutor (2 ``flux worker`` processes) and once with the LocalExecutor, in the same run,
on the same metadata database (a fresh MariaDB database, dropped at the end). Prints task
instances per second for each.

Needs MariaDB (``--admin-url``) and redis-server (a private one is started on a free port).

    python bench/celery_fanout.py [--tasks 100] [--dates 10] [--workers 2] [--concurrency 2]

Both executors get as many processes running tasks (workers x concurrency, 4 by default: twice
the cores of a small machine). The LocalExecutor hands a task to an idle process directly; Celery
workers fetch each message from the broker, so the CeleryExecutor keeps ``--in-flight`` messages
(default 4 x the processes) sent ahead, or its processes would wait on a round trip per task.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

DAG_TEMPLATE = """
from datetime import datetime, timedelta
from flux import DAG
from flux.operators import EmptyOperator

for name in ("fanout_local", "fanout_celery"):
    with DAG(name, start_date=datetime(2024, 1, 1), schedule_interval="@daily",
             max_active_runs={dates}) as dag:
        for i in range({tasks}):
            EmptyOperator(task_id=f"t{{i:03d}}")
    globals()[name] = dag
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def make_database(admin_url: str) -> tuple[str, object]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"flux_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def backfill(dag_file: Path, dag_id: str, executor: str, parallelism: int, dates: int) -> float:
    from datetime import datetime, timedelta

    from flux.backfill import BackfillJob
    from flux.dagbag import DagBag

    dag = DagBag(str(dag_file)).dags[dag_id]
    start = datetime(2024, 1, 1)
    job = BackfillJob(dag, start, start + timedelta(days=dates - 1), executor=executor,
                      parallelism=parallelism)
    began = time.perf_counter()
    result = job.run()
    seconds = time.perf_counter() - began
    if result.counts != {"success": len(dag.tasks) * dates}:
        raise SystemExit(f"{dag_id}: unexpected outcome {result.counts}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--dates", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="per Celery worker")
    parser.add_argument("--in-flight", type=int, default=None,
                        help="the CeleryExecutor's parallelism (default: 4 x workers x concurrency)")
    parser.add_argument("--admin-url", default=os.environ.get(
        "FLUX_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"))
    args = parser.parse_args()
    parallelism = args.workers * args.concurrency
    in_flight = args.in_flight or 4 * parallelism
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise SystemExit("redis-server is not installed")
    root = Path(tempfile.mkdtemp(prefix="flux-bench-celery-"))
    dag_file = root / "fanout.py"
    dag_file.write_text(DAG_TEMPLATE.format(tasks=args.tasks, dates=args.dates))
    url, drop = make_database(args.admin_url)
    port = free_port()
    env = {
        "FLUX_DATABASE_URL": url,
        "FLUX__CELERY__BROKER_URL": f"redis://127.0.0.1:{port}/0",
        "FLUX__CELERY__RESULT_BACKEND": f"redis://127.0.0.1:{port}/1",
        "FLUX__CELERY__WORKER_LOG_SERVER_PORT": "0",
        "FLUX__CORE__FERNET_KEY": "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtMzI=",
        "FLUX__CORE__DAGS_FOLDER": str(root),
        "FLUX_HOME": str(root / "home"),
    }
    os.environ.update(env)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(subprocess.Popen(
            [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL))
        from flux.db import get_engine

        get_engine()  # create the schema before the workers race to
        outputs = []
        for n in range(args.workers):
            output = root / f"worker{n}.out"
            outputs.append(output)
            with open(output, "wb") as handle:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "flux.cli.main", "worker", "-c", str(args.concurrency),
                     "--hostname", f"bench{n}@%h", "--loglevel", "WARNING"],
                    env={**os.environ, "FLUX_HOME": str(root / f"worker{n}")}, stdout=handle,
                    stderr=subprocess.STDOUT, start_new_session=True))
        if not wait_until(lambda: all(b"ready" in o.read_bytes() or b"Worker starting" in
                                      o.read_bytes() for o in outputs), 60):
            raise SystemExit("the workers did not start")
        time.sleep(2)  # let the pools fork and connect
        count = args.tasks * args.dates
        print(f"{count} no-op task instances ({args.tasks} tasks x {args.dates} dates), "
              f"metadata DB MariaDB, {parallelism} processes running tasks")
        local = backfill(dag_file, "fanout_local", "local", parallelism, args.dates)
        label = f"{parallelism} processes"
        print(f"  LocalExecutor  ({label}): {local:6.2f} s  {count / local:7.1f} TI/s")
        celery = backfill(dag_file, "fanout_celery", "celery", in_flight, args.dates)
        label = f"{args.workers} workers x {args.concurrency}, Redis, {in_flight} in flight"
        print(f"  CeleryExecutor ({label}): {celery:6.2f} s  {count / celery:7.1f} TI/s")
        print(f"  Celery / Local: {local / celery:.2f}")
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM) if process is not processes[0] \
                        else process.terminate()
                except ProcessLookupError:
                    pass
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        from flux.db import dispose_all

        dispose_all()
        drop()  # type: ignore[operator]
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
