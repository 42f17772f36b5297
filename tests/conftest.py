"""Fixtures shared by every test package.

Every test gets its own ``FLUX_HOME`` (a temporary folder) and a clean metadata database. Which
database is chosen by ``FLUX_TEST_DATABASE``: ``sqlite`` (default, a file per test), ``mysql``
(MariaDB on 127.0.0.1:3306) or ``postgres`` (127.0.0.1:5432); on a server one database is created
per test session, and its tables are emptied after each test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

MYSQL_ADMIN_URL = os.environ.get("FLUX_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
POSTGRES_ADMIN_URL = os.environ.get(
    "FLUX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REPO_ROOT = Path(__file__).resolve().parent.parent


def _server_database(admin_url: str, name: str) -> tuple[str, object]:
    """Create database ``name`` on the server of ``admin_url``; return its URL and a dropper."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        if admin.dialect.name == "postgresql":
            conn.execute(text(f"CREATE DATABASE {name}"))
        else:
            conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        from flux.db import dispose_all

        dispose_all()
        with admin.connect() as conn:
            if admin.dialect.name == "postgresql":
                conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ))
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()

    return url, drop


@pytest.fixture(scope="session")
def metadata_server_url() -> Iterator[str | None]:
    """The URL of the session's server metadata database, or None when testing on SQLite."""
    kind = os.environ.get("FLUX_TEST_DATABASE", "sqlite")
    if kind == "sqlite":
        yield None
        return
    admin = {"mysql": MYSQL_ADMIN_URL, "postgres": POSTGRES_ADMIN_URL}[kind]
    url, drop = _server_database(admin, f"flux_meta_{uuid.uuid4().hex[:8]}")
    yield url
    drop()  # type: ignore[operator]


def _empty_tables(url: str) -> None:
    from sqlalchemy import delete

    from flux.db import get_engine
    from flux.models import Base

    with get_engine(url).begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))


@pytest.fixture(autouse=True)
def flux_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metadata_server_url: str | None
) -> Iterator[Path]:
    """A private FLUX_HOME and metadata database for the test; returns the FLUX_HOME path."""
    from flux import config, db, plugins

    home = tmp_path / "flux_home"
    home.mkdir()
    monkeypatch.setenv("FLUX_HOME", str(home))
    for name in list(os.environ):
        if name.startswith(("FLUX__", "FLUX_CONN_")) or name == "FLUX_DISABLED_PLUGINS":
            monkeypatch.delenv(name)
    url = metadata_server_url or f"sqlite:///{home / 'flux.db'}"
    monkeypatch.setenv("FLUX_DATABASE_URL", url)
    config.reset_config()
    plugins.reset_plugin_manager()
    yield home
    if metadata_server_url:
        config.reset_config()
        monkeypatch.undo()  # the test may have left a broken flux.toml or environment behind
        _empty_tables(metadata_server_url)
    db.dispose_all()
    config.reset_config()
    plugins.reset_plugin_manager()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh, empty MariaDB database for the test (created and dropped around it)."""
    url, drop = _server_database(MYSQL_ADMIN_URL, f"flux_t_{uuid.uuid4().hex[:10]}")
    yield url
    drop()  # type: ignore[operator]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the test (created and dropped around it)."""
    url, drop = _server_database(POSTGRES_ADMIN_URL, f"flux_t_{uuid.uuid4().hex[:10]}")
    yield url
    drop()  # type: ignore[operator]
