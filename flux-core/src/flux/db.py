"""The metadata database: engine, sessions, and creating/migrating the schema on first use.

One URL chooses the database (``[database] url`` or ``FLUX_DATABASE_URL``): SQLite by default
(``$FLUX_HOME/flux.db``, WAL mode), MySQL/MariaDB through PyMySQL, or PostgreSQL.

A database server that goes away (restarted, failed over) is waited for, up to ``[database]
reconnect_timeout_seconds``: opening a connection retries until the server answers again, and
:func:`retry_transaction` runs again a short transaction that lost its connection half-way. Past
the bound, :class:`~flux.exceptions.DatabaseUnavailable` says so in one line.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker

from flux import writelock
from flux.config import get_config
from flux.exceptions import DatabaseError, DatabaseUnavailable

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

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
        kwargs["pool_size"] = _pool_size()
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
    else:
        event.listen(engine, "do_connect", _connect_waiting(url))
    return engine


def _pool_size() -> int:
    """``[database] pool_size``: connections each process keeps open to a database server."""
    from flux.exceptions import ConfigError

    size = int(get_config().get("database", "pool_size", 5))
    if size < 1:
        raise ConfigError(f"[database] pool_size must be at least 1, not {size}")
    return size


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
    committing = False
    try:
        yield session
        committing = True
        session.commit()
    except (OperationalError, InterfaceError) as exc:
        # the server went away, a lock timed out...: the caller may retry, the user sees one line
        _quietly(session.rollback)
        raise DatabaseError(f"metadata database error: {exc.orig}",
                            during_commit=committing) from exc
    except BaseException:
        _quietly(session.rollback)
        raise
    finally:
        _quietly(session.close)


def _quietly(step: Callable[[], None]) -> None:
    # Rolling back or closing over a connection that just died must not hide the error at hand
    # (or, after a commit that went through, turn success into a failure).
    try:
        step()
    except SQLAlchemyError as exc:
        log.debug("ignored while cleaning up a session: %s", exc)


# --- a database that goes away -----------------------------------------------------------------

#: MySQL/MariaDB errors meaning "no server there now" or "the connection is gone". Any other error
#: (a constraint, a deadlock, a lock wait timeout, a refused login) is not waited for.
_MYSQL_UNREACHABLE = frozenset({
    1053,  # server shutdown in progress
    1927,  # connection was killed
    2002,  # cannot connect through the socket
    2003,  # cannot connect to the server
    2006,  # server has gone away
    2013,  # lost connection during a query
    2055,  # lost connection (system error)
    4031,  # disconnected by the server
})
#: PostgreSQL's "administrator shutdown", "crash shutdown", "cannot connect now" (and class 08)
_POSTGRES_UNREACHABLE = frozenset({"57P01", "57P02", "57P03"})
#: a PostgreSQL connection failure that is a configuration mistake, not an outage
_POSTGRES_REFUSALS = ("authentication", "does not exist", "pg_hba.conf")


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the database server cannot be reached or dropped the connection.

    ``exc`` may be a driver's error, SQLAlchemy's wrapper of one, or the
    :class:`~flux.exceptions.DatabaseError` that :func:`session_scope` or :func:`transaction`
    raised from one.
    """
    for error in (exc, exc.__cause__):
        if isinstance(error, DBAPIError):
            if error.connection_invalidated:
                return True
            error = error.orig
        if error is not None and _driver_error_unreachable(error):
            return True
    return False


def _driver_error_unreachable(error: BaseException) -> bool:
    module = type(error).__module__
    if module.startswith("pymysql"):
        code = error.args[0] if error.args else None
        return isinstance(code, int) and code in _MYSQL_UNREACHABLE
    if module.startswith("psycopg"):
        sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if sqlstate:
            return sqlstate in _POSTGRES_UNREACHABLE or sqlstate.startswith("08")
        # no server answered (refused, timed out, closed) unless it refused who we are
        return type(error).__name__ == "OperationalError" and not any(
            hint in str(error) for hint in _POSTGRES_REFUSALS)
    return False


def _describe(error: BaseException) -> str:
    """The driver's error in one line: ``2003: Can't connect to MySQL server on ...``."""
    if isinstance(error, DatabaseError) and error.__cause__ is not None:
        error = error.__cause__
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig
    if type(error).__module__.startswith("pymysql") and len(error.args) == 2:
        return f"{error.args[0]}: {error.args[1]}"
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def reconnect_timeout() -> float:
    """How long to wait for the metadata database once it is gone (``[database]
    reconnect_timeout_seconds``; 0 gives up at once)."""
    return float(get_config().get("database", "reconnect_timeout_seconds", 120.0))


class _Outage:
    """Since when this process has been unable to reach one database, if it is now.

    Every thread of the process waits on the same outage, so the warning is logged once and the
    bound counts from when the first of them noticed.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()
        self.since: float | None = None
        self.ended_at: float | None = None

    def failed(self, error: BaseException, doing: str) -> tuple[float, float]:
        """Note a failure; returns (seconds waited so far, seconds left to wait)."""
        bound = reconnect_timeout()
        now = time.monotonic()
        with self.lock:
            first = self.since is None
            if first:
                self.since = now
            waited = now - (self.since or now)
        if first and bound > 0:
            log.warning("The metadata database %s cannot be reached (%s) while %s: waiting up to "
                        "%g s for it ([database] reconnect_timeout_seconds)",
                        self.url, _describe(error), doing, bound)
        return waited, bound - waited

    def ended(self) -> None:
        with self.lock:
            since, self.since = self.since, None
            if since is None:
                return
            self.ended_at = time.monotonic()
        log.warning("Reconnected to the metadata database after %.1f s", self.ended_at - since)

    def within(self, seconds: float) -> bool:
        with self.lock:
            if self.since is not None:
                return True
            return self.ended_at is not None and time.monotonic() - self.ended_at < seconds

    def gave_up(self, error: BaseException, waited: float, doing: str) -> DatabaseUnavailable:
        return DatabaseUnavailable(
            f"the metadata database {self.url} cannot be reached ({_describe(error)}) while {doing}; "
            f"gave up after waiting {waited:.0f} s ([database] reconnect_timeout_seconds = "
            f"{reconnect_timeout():g})")


_outages: dict[str, _Outage] = {}


def _outage(url: str | None = None) -> _Outage:
    """The outage record of ``url`` (default: the configured database)."""
    key = redact_url(url or get_config().database_url)
    found = _outages.get(key)
    if found is None:
        with _lock:
            found = _outages.setdefault(key, _Outage(key))
    return found


def _locks_after_fork() -> None:
    for outage in _outages.values():
        outage.lock = threading.Lock()


os.register_at_fork(after_in_child=_locks_after_fork)


def unreachable_within(seconds: float, url: str | None = None) -> bool:
    """Whether this process found the metadata database unreachable in the last ``seconds``.

    Heartbeats could not be written meanwhile, so they look older than they are.
    """
    return _outage(url).within(seconds)


def _pause(attempt: int) -> float:
    return min(0.1 * 2 ** attempt, 2.0)


def _connect_waiting(url: str) -> Callable[..., Any]:
    """A ``do_connect`` listener: connect, waiting (bounded) while no server answers."""

    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        outage = _outage(url)
        attempt = 0
        while True:
            try:
                connection = dialect.connect(*cargs, **cparams)
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                waited, left = outage.failed(exc, "connecting")
                if left <= 0:
                    raise outage.gave_up(exc, waited, "connecting") from None
                time.sleep(min(_pause(attempt + 1), left))
                attempt += 1
                continue
            outage.ended()
            return connection

    return connect


_commit_uncertain: ContextVar[bool] = ContextVar("flux_commit_uncertain", default=False)


def commit_uncertain() -> bool:
    """Whether an earlier attempt of the transaction :func:`retry_transaction` is re-running may
    have been committed (the connection dropped during its COMMIT).

    A guarded update that then finds the row already changed may be looking at that attempt's
    own change: the caller decides from the row whether it is.
    """
    return _commit_uncertain.get()


def retry_transaction(fn: Callable[..., T], *args: Any, what: str, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, run again whenever it fails because the database went away.

    ``fn`` must be one short transaction (its own :func:`session_scope` or :func:`transaction`) that
    is safe to run again from the start: it must read what it decides on inside the transaction,
    and change nothing outside the database before the commit. Only a lost or refused connection
    is retried; any other error (a constraint, a deadlock) is raised at once. Opening a connection
    itself waits while the server is away; past ``[database] reconnect_timeout_seconds`` (counted
    from when this process lost it), :class:`~flux.exceptions.DatabaseUnavailable` is raised.
    ``what`` ("storing the outcome of a try") is for the messages.
    """
    uncertain = False
    attempt = 0
    while True:
        token = _commit_uncertain.set(uncertain)
        try:
            result = fn(*args, **kwargs)
        except (DatabaseError, SQLAlchemyError) as exc:
            if isinstance(exc, DatabaseUnavailable) or not is_connection_error(exc):
                raise
            # an error straight from SQLAlchemy does not say whether it came during the commit
            uncertain = uncertain or getattr(exc, "during_commit", True)
            outage = _outage()
            log.info("Lost the connection to the metadata database while %s (%s): trying again",
                     what, _describe(exc))
            waited, left = outage.failed(exc, what)
            if left <= 0:
                raise outage.gave_up(exc, waited, what) from None
            time.sleep(min(_pause(attempt), left))
            attempt += 1
            continue
        finally:
            _commit_uncertain.reset(token)
        if attempt:
            _outage().ended()
        return result


def with_reconnect(what: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a function running one short transaction: see :func:`retry_transaction`."""

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return retry_transaction(fn, *args, what=what, **kwargs)

        return wrapper

    return decorate


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
    committing = False
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
            committing = True  # leaving the block commits
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseError(f"metadata database error: {exc.orig}",
                            during_commit=committing) from exc
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
        _outages.clear()


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
