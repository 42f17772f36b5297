"""The metadata database: engine, sessions, and creating/migrating the schema on first use.

One URL chooses the database (``[database] url`` or ``FLUX_DATABASE_URL``): SQLite by default
(``$FLUX_HOME/flux.db``, WAL mode), MySQL/MariaDB through PyMySQL, or PostgreSQL.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker

from flux import writelock
from flux.config import get_config
from flux.exceptions import DatabaseError

_engines: dict[str, Engine] = {}
_sessionmakers: dict[str, sessionmaker[Session]] = {}
_ready: set[str] = set()
_lock = threading.RLock()
_pid = os.getpid()


def redact_url(url: str) -> str:
    """The URL with its password hidden, safe for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (web UI, CLI) work while a backfill writes; NORMAL sync is durable across
    # application crashes in WAL mode and keeps commits cheap enough for hundreds of tasks a second.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _build_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"invalid database URL {url!r}") from None
    kwargs: dict[str, Any] = {"future": True}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
    else:
        timeout = int(get_config().get("database", "connect_timeout", 10))
        kwargs["pool_pre_ping"] = True
        kwargs["pool_recycle"] = 1800
        if backend in ("mysql", "mariadb"):
            kwargs["connect_args"] = {"connect_timeout": timeout, "charset": "utf8mb4"}
        elif backend == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": timeout}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(
            f"no driver for database URL {redact_url(url)}: {exc} "
            "(MySQL/MariaDB: mysql+pymysql://, PostgreSQL: postgresql+psycopg://)"
        ) from None
    if backend == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
    return engine


def _check_fork() -> None:
    # A forked child must not reuse the parent's pooled connections (they share one socket).
    global _pid
    if os.getpid() != _pid:
        for engine in _engines.values():
            engine.dispose(close=False)
        _pid = os.getpid()


def get_engine(url: str | None = None, *, migrate: bool = True) -> Engine:
    """The engine for ``url`` (default: the configured one), schema created/migrated on first use."""
    url = url or get_config().database_url
    with _lock:
        _check_fork()
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _build_engine(url)
        if migrate and url not in _ready:
            ensure_schema(engine)
            _ready.add(url)
    return engine


def get_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    url = url or get_config().database_url
    engine = get_engine(url)
    with _lock:
        factory = _sessionmakers.get(url)
        if factory is None:
            factory = _sessionmakers[url] = sessionmaker(bind=engine, expire_on_commit=False)
    return factory


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except (OperationalError, InterfaceError) as exc:
        # the server went away, a lock timed out...: the caller may retry, the user sees one line
        session.rollback()
        raise DatabaseError(f"metadata database error: {exc.orig}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def transaction(url: str | None = None) -> Iterator[Connection]:
    """A Core connection in one transaction: commits when the block ends, rolls back if it raises.

    For the few statements of the hot paths (claiming a try, storing its outcome, queueing): it
    skips the ORM's unit of work, which costs more than the statements themselves on SQLite.
    State changes made on it with :func:`flux.transitions.transition` reach the listeners once
    the transaction is committed, as with :func:`session_scope`.
    """
    from flux import transitions

    engine = get_engine(url)
    database_file = _sqlite_file(engine)
    writers = writelock.exclusive(database_file) if database_file else nullcontext()
    try:
        with writers, engine.begin() as conn:
            # Connection.info outlives this checkout: start clean, leave clean.
            conn.info.pop(transitions.PENDING_KEY, None)
            try:
                yield conn
            except BaseException:
                conn.info.pop(transitions.PENDING_KEY, None)
                raise
            changes = conn.info.pop(transitions.PENDING_KEY, None)
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseError(f"metadata database error: {exc.orig}") from exc
    if changes:
        transitions.announce(changes)


@functools.lru_cache(maxsize=16)
def _sqlite_file(engine: Engine) -> str | None:
    """The database file of a SQLite engine (None for other databases and in-memory SQLite)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return str(Path(url.database).expanduser().resolve())


def dispose_all() -> None:
    """Close every pooled connection and forget engines (tests switch databases)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _sessionmakers.clear()
        _ready.clear()


# --- schema ------------------------------------------------------------------------------------


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None for an empty database."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to the metadata database {redact_url(str(engine.url))}: {exc.orig}"
        ) from None


def ensure_schema(engine: Engine) -> None:
    """Create or migrate the schema if it is not at the newest revision (cheap when it is)."""
    from flux.migrations import HEAD

    if current_revision(engine) != HEAD:
        upgrade(engine)


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "flux:migrations")
    cfg.attributes["connection_engine"] = engine
    return cfg


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision``."""
    import logging

    # Alembic narrates every step at INFO (some on import); a user's basicConfig(level=DEBUG)
    # should not show that.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from alembic import command

    engine = engine or get_engine(migrate=False)
    try:
        command.upgrade(_alembic_config(engine), revision)
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot migrate the metadata database {redact_url(str(engine.url))}: {exc.orig}"
        ) from None


def reset(engine: Engine | None = None) -> None:
    """Drop every Flux table and create the schema anew. All metadata is lost."""
    from flux.models import Base

    engine = engine or get_engine(migrate=False)
    try:
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot reset the metadata database: {exc}") from None
    with _lock:
        _ready.discard(str(engine.url))
    upgrade(engine)


def is_sqlite(url: str | None = None) -> bool:
    return make_url(url or get_config().database_url).get_backend_name() == "sqlite"
