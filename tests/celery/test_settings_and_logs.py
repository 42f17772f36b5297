"""Bad input, one line each: [celery] settings, flux worker's options, messages; and the log
server's signatures and paths (a server in this process, real HTTP)."""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from celery_harness import free_port
from click.testing import CliRunner

from flux.cli.main import cli
from flux.config import reset_config
from flux.dates import UTC
from flux.executors.base import TaskRequest
from flux_celery.errors import CelerySetupError, RemoteLogError, UnsafeLogRequest
from flux_celery.logserver import (
    TOKEN_HEADER,
    check_token,
    fetch_remote_log,
    log_url_path,
    make_token,
    resolve_log_file,
    serve_logs,
)
from flux_celery.payload import payload_to_request, request_to_payload
from flux_celery.settings import CelerySettings, redact

DAY1 = datetime(2024, 1, 1, tzinfo=UTC)


def configure(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for key, value in values.items():
        monkeypatch.setenv(f"FLUX__{key.upper()}", value)
    reset_config()


# --- settings and options ------------------------------------------------------------------------

def test_defaults() -> None:
    settings = CelerySettings.from_config()
    assert (settings.broker_url, settings.default_queue, settings.worker_log_server_port) == (
        "redis://127.0.0.1:6379/0", "default", 8793)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("celery__worker_concurrency", "many", "worker_concurrency: expected int, got 'many'"),
    ("celery__worker_concurrency", "0", "worker_concurrency must be at least 1"),
    ("celery__queued_timeout", "-1", "queued_timeout must be more than 0"),
    ("celery__worker_log_server_port", "70000", "worker_log_server_port must be 0 (off)"),
    ("celery__default_queue", " ", "default_queue must not be empty"),
    ("celery__broker_url", "rabbit://h", "unknown broker kind 'rabbit'"),
    ("celery__broker_url", "amqp://guest:hunter2@h//x/", None),
    ("celery__result_backend", "localhost:6379", "unknown result backend ''"),
    ("celery__brokr_url", "redis://x", "unknown setting [celery] brokr_url"),
])
def test_bad_settings_are_one_clear_line(monkeypatch: pytest.MonkeyPatch, key: str, value: str,
                                         message: str | None) -> None:
    configure(monkeypatch, **{key: value})
    if message is None:
        assert CelerySettings.from_config().broker_url == value
        return
    with pytest.raises(CelerySetupError, match="^[^\n]*" + re.escape(message)):
        CelerySettings.from_config()


def test_secrets_are_hidden_in_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    assert redact("amqp://guest:hunter2@host//") == "amqp://guest:***@host//"
    configure(monkeypatch, celery__broker_url="bogus://me:hunter2@host")
    with pytest.raises(CelerySetupError) as caught:
        CelerySettings.from_config()
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(("args", "message"), [
    (["-c", "0"], "Error: concurrency must be at least 1, got 0"),
    (["-q", "a,,b"], "Error: invalid queue list 'a,,b'"),
    (["-q", "two words"], "Error: invalid queue list 'two words'"),
])
def test_worker_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["worker", *args])
    assert result.exit_code == 1
    assert result.output.startswith(message) and "Traceback" not in result.output


def test_an_unknown_executor_setting_stops_the_scheduler_cleanly(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    configure(monkeypatch, celery__broker_url="nope://")
    (tmp_path / "dags").mkdir()
    result = CliRunner().invoke(cli, ["scheduler", "-sd", str(tmp_path / "dags"), "--executor",
                                      "celery", "-n", "1"])
    assert result.exit_code == 1
    assert "Error: [celery] broker_url 'nope://': unknown broker kind 'nope'" in result.output


def test_messages_round_trip_and_foreign_ones_are_refused() -> None:
    request = TaskRequest("d", "t", DAY1, try_number=3, dag_file="/dags/d.py", queue="etl",
                          conf={"k": [1, 2]}, hard_timeout=12.5, job_id=7)
    assert payload_to_request(request_to_payload(request)) == request
    with pytest.raises(ValueError, match="not a flux task request"):
        payload_to_request({"dag_id": "d"})


# --- the log server ------------------------------------------------------------------------------

PATH = "/log/d/t/2024-01-01T00:00:00/1.log"


def test_tokens_open_one_path_for_a_short_time(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, webserver__secret_key="s3cret")
    token = make_token(PATH, max_age=60, now=1000.0)
    check_token(PATH, token, max_age=60, now=1030.0)
    for path, tok, now, message in [
        (PATH, token, 1061.0, "expired"),
        ("/log/d/t/2024-01-01T00:00:00/2.log", token, 1030.0, "bad log token signature"),
        (PATH, token[:-1] + ("0" if token[-1] != "0" else "1"), 1030.0, "signature"),
        (PATH, make_token(PATH, max_age=100_000, now=1000.0), 1030.0, "lives too long"),
        (PATH, None, 1030.0, "missing"),
        (PATH, "soon.abc", 1030.0, "malformed"),
    ]:
        with pytest.raises(UnsafeLogRequest, match=message):
            check_token(path, tok, max_age=60, now=now)


def test_no_shared_secret_no_log_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUX__WEBSERVER__SECRET_KEY", raising=False)
    reset_config()
    with pytest.raises(RemoteLogError, match=r"set \[webserver\] secret_key"):
        make_token(PATH)


@pytest.mark.parametrize("path", [
    "/log/d/t/2024-01-01T00:00:00/../../../../etc/passwd",
    "/log/d/t/%2e%2e/1.log",
    "/log/d/%2F..%2F..%2Fetc/2024/1.log",
    "/log/d/t/2024-01-01T00:00:00/passwd",
    "/log/d/t/2024-01-01T00:00:00/0.log",
    "/log/d/t/2024-01-01T00:00:00/1.log/x",
    "/etc/passwd",
    "/log/d/t/x%00/1.log",
])
def test_paths_that_leave_the_log_folder_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(UnsafeLogRequest):
        resolve_log_file(path, tmp_path)


def test_a_symbolic_link_out_of_the_log_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "logs" / "d" / "t" / "2024-01-01T00:00:00"
    folder.mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("secret")
    (folder / "1.log").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(UnsafeLogRequest, match="outside the log folder"):
        resolve_log_file(PATH, tmp_path / "logs")
    with pytest.raises(UnsafeLogRequest, match="not a plain name"):
        log_url_path("..", "t", DAY1, 1)


def test_the_log_server_over_http(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    configure(monkeypatch, webserver__secret_key="s3cret")
    logs = tmp_path / "logs"
    (logs / "d" / "t" / "2024-01-01T00:00:00").mkdir(parents=True)
    (logs / "d" / "t" / "2024-01-01T00:00:00" / "1.log").write_text("line one\nline two\n")
    (tmp_path / "outside.log").write_text("not yours")
    port = free_port()
    server = serve_logs(port, host="127.0.0.1", folder=logs)
    try:
        found = fetch_remote_log("127.0.0.1", "d", "t", DAY1, 1, port=port)
        assert (found.text, found.size, found.exists) == ("line one\nline two\n", 18, True)
        assert fetch_remote_log("127.0.0.1", "d", "t", DAY1, 1, port=port, offset=9).text == \
            "line two\n"
        assert not fetch_remote_log("127.0.0.1", "d", "t", DAY1, 2, port=port).exists

        def get(path: str, token: str | None) -> int:
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                             headers={TOKEN_HEADER: token} if token else {})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert get(PATH, make_token(PATH)) == 200
        assert get(PATH, None) == 403
        assert get(PATH, make_token(PATH.replace("1.log", "2.log"))) == 403
        sneaky = "/log/d/t/%2e%2e/..%2F..%2Foutside.log"
        assert get(sneaky, make_token(sneaky)) == 400  # even signed, it never leaves the folder
    finally:
        server.shutdown()
    with pytest.raises(RemoteLogError, match=r"cannot reach the log server of 127\.0\.0\.1"):
        fetch_remote_log("127.0.0.1", "d", "t", DAY1, 1, port=port, timeout=2)
    with pytest.raises(RemoteLogError, match="cannot fetch a log from host"):
        fetch_remote_log("evil.example/x?", "d", "t", DAY1, 1, port=port)
    assert os.path.exists(tmp_path / "outside.log")
