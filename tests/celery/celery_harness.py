"""Helpers of the flux-celery tests: brokers, flux processes on separate "machines"."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FERNET_KEY = "a2V5LWZvci10aGUtZmx1eC1jZWxlcnktdGVzdHMtMzI="
SECRET = "shared-secret-of-the-test-installation"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout: float, every: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class RedisServer:
    """A redis-server of the test's own, on a free port; ``persistent`` keeps data across restarts."""

    def __init__(self, folder: Path, port: int | None = None, persistent: bool = False) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        persistence = (["--appendonly", "yes", "--appendfsync", "always"] if self.persistent
                       else ["--appendonly", "no"])
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *persistence, "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: port_answers(self.port), 20), "redis-server did not start"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # redis writes its append-only file and exits
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def client(self, db: int = 0):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db)




@dataclass
class Proc:
    """A flux process started by a test, its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    output: Path
    home: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill_group(self) -> None:
        """SIGKILL the process and its children at once (as when its machine dies)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int | None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill_group()
        try:  # pool processes left behind by a killed main process
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.process.returncode


@dataclass
class Cluster:
    """An installation spread over "machines": one shared env, one FLUX_HOME per process."""

    root: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        output = self.root / f"{name}.out"
        full_env = {**os.environ, **self.env, **(env or {}), "FLUX_HOME": str(home),
                    "PYTHONUNBUFFERED": "1"}
        handle = open(output, "wb")
        process = subprocess.Popen([sys.executable, "-m", "flux.cli.main", *args], env=full_env,
                                   stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        proc = Proc(name, process, output, home)
        self.procs.append(proc)
        return proc

    def worker(self, name: str, *args: str, log_port: int = 0, ready: bool = True,
               env: dict[str, str] | None = None) -> Proc:
        proc = self.start(name, "worker", "--hostname", f"{name}@%h", *args,
                          env={"FLUX__CELERY__WORKER_LOG_SERVER_PORT": str(log_port), **(env or {})})
        if ready:
            assert wait_for(lambda: " ready." in proc.text() or not proc.alive(), 60), proc.text()
            assert proc.alive(), proc.text()
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def write_dag(cluster: Cluster, name: str, source: str) -> Path:
    """A DAG file in the shared DAG folder (the same path on every "machine")."""
    path = Path(cluster.env["FLUX__CORE__DAGS_FOLDER"]) / f"{name}.py"
    path.write_text(source)
    return path
