"""Fixtures of the flux-mysql tests: a fresh MariaDB database per test, and a connection to it.

``mysql_db`` builds on the root ``mysql_url`` fixture (a database created and dropped around the
test) and defines the connection ``local_mysql`` on it through ``FLUX_CONN_LOCAL_MYSQL``.
``sql(...)`` runs SQL on it with a plain PyMySQL connection, independent of the hook under test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flux_mysql", reason="flux-mysql is not installed")

DATE = datetime(2024, 3, 1)
HOST, PORT, USER = "127.0.0.1", 3306, "root"


@dataclass
class MySqlDatabase:
    """A scratch database of the test and what reaches it."""

    name: str
    url: str  # SQLAlchemy form, for FLUX_DATABASE_URL
    conn_id: str = "local_mysql"

    def uri(self, **extra: str) -> str:
        """The database as a Flux connection URI, with ``extra`` as query parameters."""
        query = "&".join(f"{key}={value}" for key, value in extra.items())
        return f"mysql://{USER}@{HOST}:{PORT}/{self.name}" + (f"?{query}" if query else "")

    def sql(self, statement: str, parameters: Any = None) -> tuple[tuple[Any, ...], ...]:
        """Run one statement with PyMySQL (autocommit); return its rows."""
        import pymysql

        conn = pymysql.connect(host=HOST, port=PORT, user=USER, database=self.name, charset="utf8mb4",
                               autocommit=True)
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement, parameters)
                return tuple(cursor.fetchall())
        finally:
            conn.close()


def scratch_database() -> tuple[str, Any]:
    """Create one more scratch database; return its name and a function that drops it."""
    import pymysql

    name = f"flux_t_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(host=HOST, port=PORT, user=USER, autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")

    def drop() -> None:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()

    return name, drop


@pytest.fixture
def mysql_db(mysql_url: str, monkeypatch: pytest.MonkeyPatch) -> MySqlDatabase:
    """The test's database, reachable as connection ``local_mysql``."""
    from sqlalchemy.engine import make_url

    db = MySqlDatabase(name=make_url(mysql_url).database or "", url=mysql_url)
    monkeypatch.setenv("FLUX_CONN_LOCAL_MYSQL", db.uri())
    return db


@pytest.fixture
def other_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[MySqlDatabase]:
    """A second scratch database (for transfers between databases), as connection ``other_mysql``."""
    name, drop = scratch_database()
    db = MySqlDatabase(name=name, url=f"mysql+pymysql://{USER}@{HOST}:{PORT}/{name}", conn_id="other_mysql")
    monkeypatch.setenv("FLUX_CONN_OTHER_MYSQL", db.uri())
    yield db
    drop()


@pytest.fixture
def sequential(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run DAGs with the sequential executor (in this process)."""
    from flux import config

    monkeypatch.setenv("FLUX__CORE__EXECUTOR", "sequential")
    config.reset_config()


def read_log(path: str | Path | None) -> str:
    """The text of a task's log file."""
    assert path is not None, "the run wrote no log"
    return Path(path).read_text(encoding="utf-8")
