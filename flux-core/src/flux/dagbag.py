"""``DagBag``: the DAGs found in a DAG file or folder, and the files that failed to import.

Each candidate file (a ``.py`` file whose bytes mention ``DAG`` or ``dag``) is imported on its own,
as a module named after a hash of its path, so two ``dags.py`` in different folders never clash
and one broken file never hides the others: it becomes an entry of ``bag.import_errors``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from flux.exceptions import DagImportError, DagNotFound, DuplicateDagIdError

if TYPE_CHECKING:
    from flux.dag import DAG

log = logging.getLogger(__name__)

#: how many DAG ids a "not found" message lists
_HINT_IDS = 8
_THIS_FILE = os.path.normcase(os.path.abspath(__file__))


class _ImportTimeout(BaseException):
    """Raised by SIGALRM in a DAG file that runs too long.

    A ``BaseException`` so that a DAG file's own ``except Exception`` cannot swallow it.
    """


class DagBag:
    """The DAGs of one DAG file or folder (default: ``[core] dags_folder``).

    :param path: a DAG file, or a folder searched recursively (hidden folders and
        ``__pycache__`` skipped).
    :param import_timeout: seconds one file may take to import (default
        ``[core] dagbag_import_timeout``); enforced only in the main thread.

    ``dags`` maps dag_id to DAG, ``file_dags`` maps each file that loaded to its dag_ids,
    ``import_errors`` maps each file that failed to its traceback (or message).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 import_timeout: float | None = None) -> None:
        from flux.config import get_config

        config = get_config()
        if path is None:
            path = str(config.get("core", "dags_folder"))
        self.path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        if not os.path.exists(self.path):
            kind = "file" if self.path.endswith(".py") else "folder"
            raise DagImportError(f"DAG {kind} {self.path} does not exist")
        if import_timeout is None:
            import_timeout = float(config.get("core", "dagbag_import_timeout", 30.0))
        self.import_timeout = import_timeout
        self.dags: dict[str, DAG] = {}
        self.file_dags: dict[str, list[str]] = {}
        self.import_errors: dict[str, str] = {}
        #: every candidate file looked at (loaded or broken)
        self.files: list[str] = []
        # dag_ids whose DAG object was created in another file (a factory, or an import).
        self._borrowed: set[str] = set()
        started = time.perf_counter()
        log.info("Filling up the DagBag from %s", self.path)
        for file_path in self._candidate_files():
            self.files.append(file_path)
            self._process_file(file_path)
        self.load_seconds = time.perf_counter() - started

    def __repr__(self) -> str:
        return f"<DagBag {self.path}: {len(self.dags)} DAGs, {len(self.import_errors)} errors>"

    # --- finding files ---------------------------------------------------------------------------

    @property
    def is_folder(self) -> bool:
        return os.path.isdir(self.path)

    def _candidate_files(self) -> Iterator[str]:
        if not self.is_folder:
            yield self.path
            return
        for root, dirs, files in os.walk(self.path, followlinks=True):
            # Sorted, so which of two files defining one dag_id is "the second" is stable.
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py") and not name.startswith("."):
                    yield os.path.join(root, name)

    # --- importing -------------------------------------------------------------------------------

    def _process_file(self, path: str) -> None:
        try:
            with open(path, "rb") as handle:
                source = handle.read()
        except OSError as exc:
            self.import_errors[path] = f"cannot read {path}: {exc.strerror or exc}"
            return
        if b"DAG" not in source and b"dag" not in source:
            return
        log.info("Importing %s", path)
        try:
            module = self._import(path, source)
        except _ImportTimeout:
            self.import_errors[path] = (
                f"DagImportError: importing {path} took longer than {self.import_timeout:g} s "
                "([core] dagbag_import_timeout)"
            )
            log.info("Failed to import %s: timed out after %g s", path, self.import_timeout)
            return
        except (Exception, SystemExit) as exc:
            self.import_errors[path] = _format_error(exc, path)
            log.info("Failed to import %s: %s: %s", path, type(exc).__name__, exc)
            return
        self._bag_module(path, module)

    def _import(self, path: str, source: bytes) -> ModuleType:
        from flux.connections import lasting_secrets

        name = module_name(path)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None:  # pragma: no cover - a .py path always has a loader
            raise DagImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        folder = os.path.dirname(path)
        added_path = folder not in sys.path
        if added_path:
            sys.path.insert(0, folder)
        sys.modules[name] = module
        try:
            with _time_limit(self.import_timeout), lasting_secrets():
                # Compiled from the bytes already read: no second read, and a file rewritten
                # within the same second is never served from a stale bytecode cache.
                code = compile(source, path, "exec", dont_inherit=True)
                exec(code, module.__dict__)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        finally:
            if added_path:
                try:
                    sys.path.remove(folder)
                except ValueError:
                    pass
        return module

    def _bag_module(self, path: str, module: ModuleType) -> None:
        from flux.dag import DAG

        found: dict[int, DAG] = {}
        for value in list(module.__dict__.values()):
            if isinstance(value, DAG):
                found.setdefault(id(value), value)
        adopted: list[tuple[DAG, bool]] = []
        replaced: list[str] = []
        for dag in found.values():
            own = _same_file(dag.fileloc, path)
            existing = self.dags.get(dag.dag_id)
            if existing is dag:
                continue
            if existing is not None:
                if not own:
                    continue  # a copy of another file's DAG (imported from it): that file owns it
                if dag.dag_id in self._borrowed:
                    replaced.append(dag.dag_id)  # the file that defines it wins over a borrower
                else:
                    message = (f"DAG id {dag.dag_id!r} is defined in both {existing.fileloc} "
                               f"and {path}")
                    self.import_errors[path] = f"{DuplicateDagIdError.__name__}: {message}"
                    log.info("Failed to import %s: %s", path, message)
                    return
            adopted.append((dag, own))
        for dag_id in replaced:
            old = self.dags.pop(dag_id)
            self._borrowed.discard(dag_id)
            ids = self.file_dags.get(old.fileloc, [])
            if dag_id in ids:
                ids.remove(dag_id)
                if not ids:
                    del self.file_dags[old.fileloc]
        if not adopted:
            return
        ids = self.file_dags.setdefault(path, [])
        for dag, own in adopted:
            dag.fileloc = path
            self.dags[dag.dag_id] = dag
            ids.append(dag.dag_id)
            if not own:
                self._borrowed.add(dag.dag_id)

    # --- asking ----------------------------------------------------------------------------------

    @property
    def dag_ids(self) -> list[str]:
        return sorted(self.dags)

    def size(self) -> int:
        return len(self.dags)

    def is_borrowed(self, dag_id: str) -> bool:
        """Whether the DAG ``dag_id`` was created in a file outside this bag (a DAG file imported
        from another one): the file that creates it owns it."""
        return dag_id in self._borrowed

    def get_dag(self, dag_id: str) -> DAG:
        """The DAG ``dag_id``, or :class:`DagNotFound` with a hint at what is there."""
        dag = self.dags.get(dag_id)
        if dag is not None:
            return dag
        raise DagNotFound(f"DAG {dag_id!r} not found in {self.path}{self._not_found_hint(dag_id)}")

    def _not_found_hint(self, dag_id: str) -> str:
        for path, error in self.import_errors.items():
            try:
                with open(path, "rb") as handle:
                    mentions = dag_id.encode() in handle.read()
            except OSError:
                mentions = False
            if mentions:
                return f": {path} mentions it but failed to import ({last_line(error)})"
        parts = []
        if self.dags:
            ids = self.dag_ids
            shown = ", ".join(ids[:_HINT_IDS])
            more = f" and {len(ids) - _HINT_IDS} more" if len(ids) > _HINT_IDS else ""
            parts.append(f"available: {shown}{more}")
        else:
            parts.append("no DAGs were found there")
        if self.import_errors:
            count = len(self.import_errors)
            parts.append(f"{count} DAG file{'s' if count > 1 else ''} failed to import "
                         "('flux dags list' shows why)")
        return "; " + "; ".join(parts)

    # --- the metadata database -------------------------------------------------------------------

    def sync_to_db(self, session: Any = None) -> None:
        """Record every DAG (``dag`` table) and every broken file (``import_error`` table).

        A DAG seen for the first time is paused if ``is_paused_upon_creation``; the paused flag of
        a known DAG is never changed here. Import errors of the files this bag looked at are
        replaced by the current ones.
        """
        if session is not None:
            self._sync(session)
            return
        from sqlalchemy.exc import IntegrityError

        from flux.db import session_scope

        try:
            with session_scope() as new_session:
                self._sync(new_session)
        except IntegrityError:
            # Another process (the scheduler, another CLI) inserted the same new rows first:
            # once more, now updating them.
            with session_scope() as new_session:
                self._sync(new_session)

    def _covers(self, filename: str | None) -> bool:
        """Is ``filename`` this bag's file, or inside its folder?"""
        if not filename:
            return False
        if filename == self.path:
            return True
        return self.is_folder and filename.startswith(self.path.rstrip(os.sep) + os.sep)

    def _sync(self, session: Any) -> None:
        import json

        from sqlalchemy import select

        from flux.dates import utcnow
        from flux.models import DagModel, ImportErrorRecord

        now = utcnow()
        rows = {row.dag_id: row for row in session.execute(select(DagModel)).scalars()}
        for dag_id, dag in self.dags.items():
            row = rows.get(dag_id)
            if row is None:
                row = DagModel(dag_id=dag_id, is_paused=bool(dag.is_paused_upon_creation))
                session.add(row)
            row.fileloc = dag.fileloc
            row.owners = dag.owner
            row.description = dag.description
            row.schedule = dag.schedule.describe()
            row.tags = json.dumps(dag.tags)
            row.max_active_runs = dag.max_active_runs
            row.last_parsed_time = now
            row.is_active = True
        for dag_id, row in rows.items():
            # A DAG gone from a file that still loads is no longer active; one of a broken file
            # keeps its row as it was until the file is fixed.
            if (dag_id not in self.dags and row.is_active and self._covers(row.fileloc)
                    and row.fileloc not in self.import_errors):
                row.is_active = False
        errors: dict[str, Any] = {}
        for row in session.execute(select(ImportErrorRecord)).scalars():
            covered = self._covers(row.filename)
            # Without a unique filename column, two concurrent syncs may both have inserted one.
            if covered and (row.filename not in self.import_errors or row.filename in errors):
                session.delete(row)
            else:
                errors.setdefault(row.filename, row)
        for filename, stacktrace in self.import_errors.items():
            row = errors.get(filename)
            if row is None:
                session.add(ImportErrorRecord(filename=filename, timestamp=now,
                                              stacktrace=stacktrace))
            else:
                row.timestamp, row.stacktrace = now, stacktrace
        session.flush()


# --- helpers -------------------------------------------------------------------------------------


def module_name(path: str) -> str:
    """The module name a DAG file is imported as (unique per path)."""
    digest = hashlib.sha1(path.encode("utf-8", "surrogateescape"), usedforsecurity=False)
    stem = os.path.splitext(os.path.basename(path))[0]
    safe = "".join(c if c.isalnum() else "_" for c in stem)
    return f"flux_dagfile_{digest.hexdigest()[:16]}_{safe}"


def last_line(error: str) -> str:
    """The last non-empty line of a traceback (the exception and its message)."""
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _same_file(a: str | None, b: str) -> bool:
    if not a:
        return False
    return a == b or os.path.normcase(os.path.abspath(a)) == os.path.normcase(b)


def _format_error(exc: BaseException, path: str) -> str:
    """The traceback of a failed import, without the frames of Flux's own importing code."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith("<frozen") or os.path.normcase(filename) == _THIS_FILE:
            tb = tb.tb_next
            continue
        break
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


class _time_limit:  # noqa: N801 - used as a context manager, like a function
    """Raise :class:`_ImportTimeout` in the block after ``seconds`` (main thread only)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.active = bool(seconds and seconds > 0
                           and threading.current_thread() is threading.main_thread()
                           and hasattr(signal, "setitimer"))

    def __enter__(self) -> None:
        if not self.active:
            return

        def on_alarm(signum: int, frame: Any) -> None:
            raise _ImportTimeout()

        self.started = time.monotonic()
        self.previous_handler = signal.signal(signal.SIGALRM, on_alarm)
        # Keep an outer timer (a task's execution_timeout) to re-arm it afterwards.
        self.previous_timer = signal.setitimer(signal.ITIMER_REAL, self.seconds)  # type: ignore[arg-type]

    def __exit__(self, *exc_info: object) -> None:
        if not self.active:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous_handler)
        remaining, interval = self.previous_timer
        if remaining > 0:
            left = remaining - (time.monotonic() - self.started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), interval)


# --- the per-process cache of long-lived workers ---------------------------------------------------

_cache: dict[str, tuple[int, int, DagBag]] = {}
_cache_lock = threading.Lock()


def get_dag_from_file(path: str | os.PathLike[str], dag_id: str) -> DAG:
    """The DAG ``dag_id`` of the file ``path``, imported once per process and re-imported only
    when the file's modification time or size changed (one ``os.stat`` otherwise)."""
    key = os.path.abspath(os.fspath(path))
    try:
        stat = os.stat(key)
    except OSError:
        raise DagImportError(f"DAG file {key} does not exist") from None
    entry = _cache.get(key)
    if entry is None or entry[0] != stat.st_mtime_ns or entry[1] != stat.st_size:
        with _cache_lock:
            entry = _cache.get(key)
            if entry is None or entry[0] != stat.st_mtime_ns or entry[1] != stat.st_size:
                entry = (stat.st_mtime_ns, stat.st_size, DagBag(key))
                _cache[key] = entry
    return entry[2].get_dag(dag_id)


def clear_cache() -> None:
    """Forget every cached DAG file (tests; a worker that wants a fresh start)."""
    with _cache_lock:
        _cache.clear()
