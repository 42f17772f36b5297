"""``flux webserver``: a real process serving real HTTP (waitress, or Flask's server with --debug)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

#: upper bound for the server to start (never reached when things work)
START_BOUND_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url)
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _start(flux_env: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    env = {**os.environ, "FLUX_HOME": str(flux_env)}
    process = subprocess.Popen(
        [sys.executable, "-m", "flux.cli.main", "webserver", "-p", str(port), "-H", "127.0.0.1", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_BOUND_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the webserver exited: {process.stdout.read()}")  # type: ignore[union-attr]
        try:
            if _get(f"{base}/health")[0] == 200:
                return process, base
        except OSError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail("the webserver did not answer /health")


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.parametrize("mode", [[], ["--workers", "2"], ["--debug"]])
def test_flux_webserver_serves_and_keeps_pages_behind_the_sign_in(
        flux_env: Path, stop: list[subprocess.Popen[str]], mode: list[str]) -> None:
    process, base = _start(flux_env, *mode)
    stop.append(process)
    status, _headers, body = _get(f"{base}/health")
    assert json.loads(body) == {"status": "ok", "database": "ok"}
    status, headers, _body = _get(f"{base}/dags")
    assert status == 302 and headers["Location"].endswith("/login?next=/dags")
    assert _get(f"{base}/api/v1/dags")[0] == 401
    status, _headers, body = _get(f"{base}/login")
    assert status == 200 and "Sign in to Flux" in body
    assert _get(f"{base}/static/vendor/chart.umd.min.js")[0] == 200
    # the installation's secret was generated and stored on first start
    key = tomllib.loads((flux_env / "flux.toml").read_text())["webserver"]["secret_key"]
    assert len(key) == 64
    os.killpg(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    assert "No web users yet" in output
    assert ("Flask development server" in output) == ("--debug" in mode)
    if mode == ["--workers", "2"]:
        assert "(2 threads)" in output


def test_flux_webserver_records_the_dag_folder_on_start(flux_env: Path, dags_folder: Path,
                                                        stop: list[subprocess.Popen[str]]) -> None:
    from flux.db import session_scope
    from flux.models import DagModel

    process, _base = _start(flux_env)
    stop.append(process)
    deadline = time.monotonic() + START_BOUND_SECONDS
    found = None
    while time.monotonic() < deadline and found is None:
        with session_scope() as session:
            found = session.get(DagModel, "web_demo")
        time.sleep(0.1)
    assert found is not None and found.owners == "carol"


def test_a_port_in_use_is_one_clear_line(flux_env: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "flux.cli.main", "webserver", "-p", str(port)],
            env={**os.environ, "FLUX_HOME": str(flux_env)}, capture_output=True, text=True,
            timeout=60)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
