"""Fixtures of the flux-celery tests: real brokers, real worker processes, a server database.

Every test gets its own Redis server on a free port (started and stopped by the test, so stopping
or restarting it never disturbs other tests), a fresh MariaDB database as the metadata database,
and helpers (``celery_harness``) to start ``flux worker`` and ``flux scheduler`` as separate OS
processes, each with its own ``FLUX_HOME`` (so its own log folder) and the shared secrets.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from celery_harness import FERNET_KEY, SECRET, Cluster, RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of the test's own (broker and result backend)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server_db(mysql_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point this process at a fresh MariaDB database; returns its URL."""
    from flux import config, db

    db.dispose_all()
    monkeypatch.setenv("FLUX_DATABASE_URL", mysql_url)
    config.reset_config()
    return mysql_url


@pytest.fixture
def cluster(tmp_path: Path, server_db: str, redis_server: RedisServer,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """Shared settings (this process gets them too) and a way to start worker/scheduler processes."""
    from flux import config

    env = {
        "FLUX_DATABASE_URL": server_db,
        "FLUX__CELERY__BROKER_URL": redis_server.url(0),
        "FLUX__CELERY__RESULT_BACKEND": redis_server.url(1),
        "FLUX__CORE__FERNET_KEY": FERNET_KEY,
        "FLUX__WEBSERVER__SECRET_KEY": SECRET,
        "FLUX__CELERY__SYNC_INTERVAL": "1",
        "FLUX__SCHEDULER__HEARTBEAT_SECONDS": "1",
        "FLUX__SCHEDULER__ZOMBIE_THRESHOLD_SECONDS": "5",
        "FLUX__SCHEDULER__LOOP_INTERVAL": "0.2",
        "FLUX__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
    }
    (tmp_path / "dags").mkdir(exist_ok=True)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config.reset_config()
    made = Cluster(tmp_path / "machines", env)
    try:
        yield made
    finally:
        made.stop_all()
        from flux_celery.app import reset_apps

        reset_apps()
