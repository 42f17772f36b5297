"""Waiting for a metadata database that went away, and running a transaction again that lost its
connection (``flux.db.retry_transaction``).

The faults are real. "Nothing listens" is a port where nothing listens. Against MariaDB, the tests
talk to the server through :class:`CuttableProxy`, a TCP relay that can refuse connections for a
while (the server is "down" for Flux; the shared server itself is never stopped), cut every
connection, or let one COMMIT reach the server and cut the connection before the client hears back:
the transaction is stored, the client only knows it lost the connection while committing.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from flux import DAG, config, db
from flux.dates import UTC
from flux.db import commit_uncertain, retry_transaction, session_scope
from flux.exceptions import DatabaseError, DatabaseUnavailable
from flux.models import TaskInstance
from flux.state import State

DAY = datetime(2024, 1, 1, tzinfo=UTC)
COM_QUERY = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CuttableProxy:
    """A TCP relay to a MariaDB server that can be taken down and can cut a connection at a COMMIT."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _free_port()
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.marker: bytes | None = None
        self.cut_commits = 0
        self.listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        """Accept connections again, on the same port."""
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut every open one, as a server that went away."""
        assert self.listener is not None
        listener, self.listener = self.listener, None
        listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        listener.close()
        with self.lock:
            for sock in list(self.sockets):
                self._close(sock)

    def cut_after_commit(self, marker: bytes) -> None:
        """The next transaction that sends a query containing ``marker``: relay its COMMIT, wait
        for the server's answer (so it is committed), then cut the connection instead of relaying
        it."""
        self.marker = marker

    def _close(self, sock: socket.socket) -> None:
        self.sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self.lock:
                self.sockets.update((client, server))
            state = {"armed": False, "swallow": False}
            threading.Thread(target=self._upstream, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client, state), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket, state: dict[str, bool]) -> None:
        buffer = b""
        try:
            while chunk := client.recv(65536):
                buffer += chunk
                # MySQL packets: 3 bytes of length, 1 of sequence, then the payload
                while len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[:3], "little"):
                    size = 4 + int.from_bytes(buffer[:3], "little")
                    packet, buffer = buffer[:size], buffer[size:]
                    self._inspect(packet[4:], state)
                    server.sendall(packet)
        except OSError:
            pass
        with self.lock:
            self._close(client)
            self._close(server)

    def _inspect(self, payload: bytes, state: dict[str, bool]) -> None:
        if not payload or payload[0] != COM_QUERY:
            return
        query = payload[1:]
        with self.lock:
            if self.marker is not None and self.marker in query:
                state["armed"] = True
                self.marker = None
            if state["armed"] and query.strip().upper() == b"COMMIT":
                state["swallow"] = True  # set before the COMMIT leaves: its answer comes after

    def _downstream(self, server: socket.socket, client: socket.socket, state: dict[str, bool]) -> None:
        try:
            while chunk := server.recv(65536):
                if state["swallow"]:
                    self.cut_commits += 1
                    break
                client.sendall(chunk)
        except OSError:
            pass
        with self.lock:
            self._close(client)
            self._close(server)

    def close(self) -> None:
        if self.listener is not None:
            self.down()


@pytest.fixture
def proxy(mysql_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CuttableProxy]:
    """The metadata database on MariaDB, reached through a :class:`CuttableProxy`."""
    url = make_url(mysql_url)
    relay = CuttableProxy((url.host or "127.0.0.1", url.port or 3306))
    monkeypatch.setenv("FLUX_DATABASE_URL", url.set(port=relay.port).render_as_string(hide_password=False))
    monkeypatch.setenv("FLUX__DATABASE__RECONNECT_TIMEOUT_SECONDS", "30")
    config.reset_config()
    db.dispose_all()
    db.get_engine()  # the schema, created through the relay
    yield relay
    db.dispose_all()
    relay.close()


def _nowhere(monkeypatch: pytest.MonkeyPatch, bound: float, driver: str = "mysql+pymysql") -> str:
    url = f"{driver}://root@127.0.0.1:{_free_port()}/flux"
    monkeypatch.setenv("FLUX_DATABASE_URL", url)
    monkeypatch.setenv("FLUX__DATABASE__RECONNECT_TIMEOUT_SECONDS", str(bound))
    config.reset_config()
    db.dispose_all()
    return url


# --- waiting, and giving up -----------------------------------------------------------------------


def test_nothing_listening_is_waited_for_up_to_the_bound_then_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _nowhere(monkeypatch, 2)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "flux.cli.main", "db", "init"],
                            capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    waited = time.monotonic() - started
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr  # the warning when the wait began, and the error
    assert "cannot be reached" in lines[0] and "waiting up to 2 s" in lines[0]
    assert lines[1].startswith("Error: the metadata database mysql+pymysql://root@127.0.0.1:")
    assert "Connection refused" in lines[1] and "gave up after waiting 2 s" in lines[1]
    assert waited >= 2  # it did wait, and then (the bound below is only a hang guard) stopped
    assert waited < 60


@pytest.mark.parametrize("driver", ["mysql+pymysql", "postgresql+psycopg"])
def test_a_bound_of_zero_gives_up_at_once_with_the_same_error(
        driver: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _nowhere(monkeypatch, 0, driver)
    with pytest.raises(DatabaseUnavailable, match=r"cannot be reached .* gave up after waiting 0 s"):
        with session_scope() as session:
            session.execute(text("SELECT 1"))
    assert not [r for r in caplog.records if "waiting up to" in r.getMessage()]


@pytest.mark.mysql
def test_a_refused_login_is_not_waited_for(mysql_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _assert_refused_at_once(monkeypatch, make_url(mysql_url).set(username="no_such_flux_user"),
                            "Access denied")


@pytest.mark.postgres
def test_a_missing_postgres_database_is_not_waited_for(postgres_url: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _assert_refused_at_once(monkeypatch, make_url(postgres_url).set(database="no_such_flux_db"),
                            "does not exist")


def _assert_refused_at_once(monkeypatch: pytest.MonkeyPatch, url: Any, match: str) -> None:
    """Connecting to ``url`` fails with ``match`` long before the 300 s bound: not an outage."""
    monkeypatch.setenv("FLUX_DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("FLUX__DATABASE__RECONNECT_TIMEOUT_SECONDS", "300")
    config.reset_config()
    db.dispose_all()
    started = time.monotonic()
    with pytest.raises(DatabaseError, match=match) as raised:
        db.get_engine()
    assert not isinstance(raised.value, DatabaseUnavailable)
    assert time.monotonic() - started < 60  # far below the 300 s it would have waited


@pytest.mark.mysql
def test_a_database_that_comes_back_is_reconnected_to(proxy: CuttableProxy,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flux.db")
    with session_scope() as session:
        assert session.execute(text("SELECT 1")).scalar() == 1
    proxy.down()
    threading.Timer(2.0, proxy.up).start()
    started = time.monotonic()
    results = []

    def read() -> None:
        with session_scope() as session:  # pooled connections are dead: each thread reconnects
            results.append(session.execute(text("SELECT 2")).scalar())

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=60)
    assert results == [2, 2, 2]
    assert time.monotonic() - started >= 2.0
    messages = [r.getMessage() for r in caplog.records if r.name == "flux.db"]
    assert len([m for m in messages if "cannot be reached" in m]) == 1, messages  # once per outage
    assert len([m for m in messages if m.startswith("Reconnected to the metadata database after")]) == 1


# --- running a transaction again --------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def test_other_errors_are_not_retried(backend: str, request: pytest.FixtureRequest,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if backend == "mysql":
        monkeypatch.setenv("FLUX_DATABASE_URL", request.getfixturevalue("mysql_url"))
        config.reset_config()
        db.dispose_all()
    calls = []

    def insert_twice() -> None:
        calls.append(1)
        with session_scope() as session:
            for _ in range(2):
                session.add(TaskInstance(dag_id="d", task_id="t", execution_date=DAY, try_number=0,
                                         max_tries=0))
                session.flush()

    with pytest.raises((IntegrityError, DatabaseError)):
        retry_transaction(insert_twice, what="inserting")
    assert calls == [1]


@pytest.mark.mysql
def test_a_transaction_that_lost_its_connection_runs_again(proxy: CuttableProxy) -> None:
    seen: list[bool] = []

    def write() -> int:
        seen.append(commit_uncertain())
        with session_scope() as session:
            session.add(TaskInstance(dag_id="d", task_id="t", execution_date=DAY, try_number=0,
                                     max_tries=0))
            session.flush()
            if len(seen) == 1:
                proxy.down()  # the server goes away in the middle of the transaction
                threading.Timer(1.0, proxy.up).start()
            return int(session.execute(text("SELECT COUNT(*) FROM task_instance")).scalar())

    assert retry_transaction(write, what="writing") == 1
    # the connection was lost before the COMMIT: the first attempt certainly stored nothing
    assert seen == [False, False]
    assert commit_uncertain() is False


@pytest.mark.mysql
def test_a_commit_whose_answer_was_lost_is_said_to_be_uncertain(proxy: CuttableProxy) -> None:
    with session_scope() as session:
        session.add(TaskInstance(dag_id="d", task_id="t", execution_date=DAY, try_number=0,
                                 max_tries=0))
    seen: list[bool] = []

    def bump() -> bool:
        """A guarded update, as the state transitions are: 0 -> 1 tries."""
        seen.append(commit_uncertain())
        with session_scope() as session:
            changed = session.execute(text(
                "UPDATE task_instance SET try_number = 1, note = 'bumped' WHERE try_number = 0"
            )).rowcount
            if changed:
                return True
            # no row changed: someone else did it, or our own first attempt did after all
            return commit_uncertain() and session.execute(text(
                "SELECT try_number FROM task_instance")).scalar() == 1

    proxy.cut_after_commit(b"'bumped'")
    assert retry_transaction(bump, what="bumping") is True
    assert proxy.cut_commits == 1
    assert seen == [False, True]
    with session_scope() as session:
        assert session.execute(text("SELECT try_number FROM task_instance")).scalar() == 1


# --- the claim and the outcome of a try, when their COMMIT's answer is lost ------------------------


def _dag(ran: list[int], callbacks: list[str]) -> DAG:
    from flux.operators import PythonOperator

    with DAG("reconnect", start_date=DAY, schedule_interval="@daily") as dag:
        PythonOperator(task_id="work", python_callable=lambda: ran.append(os.getpid()),
                       on_success_callback=lambda context: callbacks.append("success"))
    return dag


def _stored() -> Any:
    with session_scope() as session:
        ti = session.get(TaskInstance, ("reconnect", "work", DAY))
        session.expunge(ti)
        return ti


@pytest.mark.mysql
@pytest.mark.parametrize("cut_at", ["claim", "outcome"])
def test_a_try_whose_commit_answer_was_lost_runs_once_and_keeps_its_outcome(
        cut_at: str, proxy: CuttableProxy, caplog: pytest.LogCaptureFixture,
        tmp_path: Path) -> None:
    from flux.taskrunner import RunOptions, run_task_instance

    ran: list[int] = []
    callbacks: list[str] = []
    task = _dag(ran, callbacks).get_task("work")
    # the claim's UPDATE sets state 'running'; the outcome's sets 'success'
    proxy.cut_after_commit(b"state='running'" if cut_at == "claim" else b"state='success'")
    caplog.set_level(logging.INFO)
    result = run_task_instance(task, DAY, RunOptions(ignore_dependencies=True))
    assert proxy.cut_commits == 1
    assert (result.state, result.ran) == (State.SUCCESS, True), result.message
    assert ran == [os.getpid()], "the try did not run exactly once"
    assert callbacks == ["success"]
    ti = _stored()
    assert (ti.state, ti.try_number, ti.pid) == (State.SUCCESS, 1, os.getpid())
    assert "changed by someone else" not in caplog.text


@pytest.mark.mysql
def test_a_lost_try_recorded_by_an_uncertain_commit_runs_its_callback_once(
        proxy: CuttableProxy) -> None:
    from flux.executors.base import handle_lost_try, register_dag

    callbacks: list[str] = []
    with DAG("reconnect", start_date=DAY, schedule_interval="@daily") as dag:
        from flux.operators import PythonOperator

        PythonOperator(task_id="work", python_callable=lambda: None, retries=1,
                       on_retry_callback=lambda context: callbacks.append("retry"))
    register_dag(dag)
    with session_scope() as session:
        session.add(TaskInstance(dag_id="reconnect", task_id="work", execution_date=DAY,
                                 state=State.RUNNING, try_number=1, max_tries=1))
    proxy.cut_after_commit(b"worker vanished")
    assert handle_lost_try(("reconnect", "work", DAY), 1, "worker vanished") == State.UP_FOR_RETRY
    assert proxy.cut_commits == 1
    assert callbacks == ["retry"]
    assert _stored().state == State.UP_FOR_RETRY
