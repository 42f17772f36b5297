"""A private MariaDB server for tests that stop the metadata database: its own data directory,
port and socket, so stopping it disturbs nobody else's tests (never the shared server on 3306).

The server is a real ``mariadbd`` started as a subprocess: :meth:`MariaDBServer.stop` ends it with
SIGTERM (a clean shutdown) or SIGKILL (a crash), and :meth:`MariaDBServer.start` starts it again
on the same data directory and port, as a restarted or failed-over database server would come back.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

#: where distributions install the server's binaries (often not on a non-root user's PATH)
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin")
START_BOUND_SECONDS = 60.0


def _find(*names: str) -> str | None:
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return found
    return None


def binaries() -> tuple[str, str] | None:
    """(the data directory initialiser, the server), or None when MariaDB is not installed."""
    install = _find("mariadb-install-db", "mysql_install_db")
    server = _find("mariadbd", "mysqld")
    return (install, server) if install and server else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MariaDBServer:
    """One private MariaDB server: :meth:`init` once, then :meth:`start` / :meth:`stop` at will."""

    def __init__(self, workdir: Path) -> None:
        found = binaries()
        if found is None:
            pytest.skip("MariaDB server binaries (mariadb-install-db, mariadbd) are not installed")
        self.install_db, self.server = found
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.datadir = workdir / "data"
        # a unix socket path must stay under ~100 bytes: keep it out of pytest's long tmp paths
        self.sockdir = Path(tempfile.mkdtemp(prefix="flux-mdb-"))
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # Every option the server needs is given here, and no option file is read (--no-defaults):
    # the machine's my.cnf may name another user, data directory or log file.
    def _common(self) -> list[str]:
        options = ["--no-defaults", f"--datadir={self.datadir}", "--innodb-log-file-size=8M",
                   "--innodb-buffer-pool-size=32M"]
        if os.geteuid() == 0:
            options.append("--user=root")  # mariadbd refuses to run as root otherwise
        return options

    def init(self) -> float:
        """Create the data directory (root with an empty password); returns the seconds it took."""
        started = time.monotonic()
        result = subprocess.run(
            [self.install_db, *self._common(), "--auth-root-authentication-method=normal",
             "--skip-test-db"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            pytest.fail("mariadb-install-db failed:\n" + result.stdout.decode(errors="replace")[-3000:])
        return time.monotonic() - started

    @property
    def error_log(self) -> Path:
        return self.workdir / "mariadb.err"

    def start(self) -> float:
        """Start the server and wait until it answers; returns the seconds it took."""
        assert self.process is None or self.process.poll() is not None, "already running"
        started = time.monotonic()
        self.process = subprocess.Popen(
            [self.server, *self._common(), f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--socket={self.sockdir / 'mysqld.sock'}", f"--pid-file={self.workdir / 'mariadb.pid'}",
             f"--log-error={self.error_log}", "--skip-name-resolve", "--skip-log-bin"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        deadline = started + START_BOUND_SECONDS
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                log = self.error_log.read_text(errors="replace") if self.error_log.exists() else ""
                pytest.fail(f"the private MariaDB server did not start:\n{log[-3000:]}")
            time.sleep(0.1)
        return time.monotonic() - started

    def _answers(self) -> bool:
        import pymysql

        try:
            pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1).close()
        except pymysql.err.OperationalError:
            return False
        return True

    def stop(self, how: str = "kill") -> None:
        """End the server: ``"term"`` (clean shutdown) or ``"kill"`` (SIGKILL, as in a crash)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM if how == "term" else signal.SIGKILL)
        try:
            self.process.wait(timeout=START_BOUND_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("the private MariaDB server did not stop after SIGTERM")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its SQLAlchemy URL."""
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", autocommit=True)
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 "
                               "COLLATE utf8mb4_unicode_ci")
        finally:
            conn.close()
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.sockdir, ignore_errors=True)
