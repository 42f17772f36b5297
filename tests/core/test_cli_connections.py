"""``flux connections ...`` and ``flux rotate-fernet-key``, through click and the real console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flux import crypto
from flux.cli.main import cli
from flux.config import get_config, reset_config
from flux.connections import ConnectionInfo, add_connection, get_connection, list_connections

URI = "mysql://etl:pa%40ss-w0rd@db.example.com:3306/sales?charset=utf8mb4"


def flux(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    reset_config()  # the next command reads flux.toml again, as a new process would
    return result


def _one_line_error(result: Result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_add_from_uri_then_get_and_list() -> None:
    result = flux("connections", "add", "warehouse", "--uri", URI)
    assert result.exit_code == 0, result.output
    masked = "mysql://etl:***@db.example.com:3306/sales?charset=utf8mb4"
    assert f"Added connection 'warehouse': {masked}" in result.output
    assert "pa@ss-w0rd" not in result.output
    assert get_connection("warehouse").password == "pa@ss-w0rd"

    shown = flux("connections", "get", "warehouse")
    assert shown.exit_code == 0
    assert "pa@ss-w0rd" not in shown.output and "pa%40ss" not in shown.output
    assert any(line.split() == ["password", "***"] for line in shown.output.splitlines())
    assert any(line.split() == ["host", "db.example.com"] for line in shown.output.splitlines())

    as_json = json.loads(flux("connections", "get", "warehouse", "--json").output)
    assert (as_json["password"], as_json["port"]) == ("***", 3306)
    assert as_json["extra"] == {"charset": "utf8mb4"}

    listed = flux("connections", "list")
    assert listed.exit_code == 0
    header, _rule, row = listed.output.splitlines()[:3]
    assert header.split()[:6] == ["conn_id", "conn_type", "host", "port", "login", "password"]
    assert row.split()[:6] == ["warehouse", "mysql", "db.example.com", "3306", "etl", "***"]
    assert "pa@ss-w0rd" not in listed.output


def test_add_from_fields_with_secret_extra() -> None:
    result = flux(
        "connections", "add", "api", "--conn-type", "http", "--host", "api.example.com", "--port", "8443",
        "--login", "bot", "--password", "hunter2", "--extra", '{"api_key": "AKIA-123", "timeout": 3}',
        "--description", "the API",
    )
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output and "AKIA-123" not in result.output
    info = get_connection("api")
    assert (info.port, info.password, info.extra, info.description) == (
        8443, "hunter2", {"api_key": "AKIA-123", "timeout": 3}, "the API",
    )
    listed = flux("connections", "list", "--json")
    [entry] = json.loads(listed.output)
    assert entry["extra"] == {"api_key": "***", "timeout": 3}
    assert "AKIA-123" not in listed.output and "hunter2" not in listed.output


def test_connection_without_password_shows_none() -> None:
    flux("connections", "add", "open", "--conn-type", "http", "--host", "h")
    row = flux("connections", "list").output.splitlines()[2]
    assert "***" not in row


def test_replace() -> None:
    assert flux("connections", "add", "w", "--uri", URI).exit_code == 0
    line = _one_line_error(flux("connections", "add", "w", "--uri", "postgres://u@other/db"))
    assert "already exists" in line and "--replace" in line
    assert get_connection("w").host == "db.example.com"
    result = flux("connections", "add", "w", "--uri", "postgres://u@other/db", "--replace")
    assert result.exit_code == 0 and "Replaced connection 'w'" in result.output
    assert get_connection("w").host == "other"


def test_delete() -> None:
    flux("connections", "add", "w", "--uri", URI)
    result = flux("connections", "delete", "w")
    assert result.exit_code == 0 and "Deleted connection 'w'" in result.output
    assert list_connections() == []
    line = _one_line_error(flux("connections", "delete", "w"))
    assert line == "Error: connection 'w' not found; add it with: flux connections add w --uri ..."


HTTP = ["connections", "add", "x", "--conn-type", "http"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["connections", "get", "nope"], "connection 'nope' not found"),
        (["connections", "add", "x", "--uri", "localhost:3306"], "has no TYPE:// scheme"),
        (["connections", "add", "x", "--uri", "mysql://u:secretpw@h:99x/db"], "port '99x' is not a number"),
        ([*HTTP, "--extra", "{nope"], "--extra is not valid JSON"),
        ([*HTTP, "--extra", "[1, 2]"], "--extra must be a JSON object"),
        ([*HTTP, "--port", "eighty"], "port 'eighty' is not a number"),
        (["connections", "add", "x", "--uri", URI, "--host", "h"], "either --uri or field options"),
        (["connections", "add", "x", "--host", "h"], "at least --conn-type"),
        (["connections", "add", " x", "--conn-type", "http"], "surrounding spaces"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(args: list[str], expected: str) -> None:
    line = _one_line_error(flux(*args))
    assert expected in line
    assert "secretpw" not in line
    assert list_connections() == []


def test_wrong_fernet_key_is_one_line() -> None:
    flux("connections", "add", "w", "--uri", URI)
    get_config().set_persistent("core", "fernet_key", crypto.generate_key())
    reset_config()
    for args in (["connections", "get", "w"], ["connections", "list"], ["rotate-fernet-key"]):
        line = _one_line_error(flux(*args))
        assert "fernet_key" in line


def test_environment_connections_are_listed_and_shadowing_is_noted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUX_CONN_W", "postgres://env@envhost/db")
    result = CliRunner().invoke(cli, ["connections", "add", "w", "--uri", URI])
    assert result.exit_code == 0
    assert "FLUX_CONN_W is set and takes precedence" in result.output
    listed = flux("connections", "list").output.splitlines()
    assert listed[2].split()[:3] == ["w", "postgres", "envhost"] and listed[2].split()[-1] == "env"
    shown = flux("connections", "get", "w", "--json")
    assert json.loads(shown.output)["source"] == "env"


def test_empty_list() -> None:
    assert "No connections" in flux("connections", "list").output


def test_rotate_fernet_key(flux_env: Path) -> None:
    flux("connections", "add", "w", "--uri", URI)
    flux("connections", "add", "api", "--conn-type", "http", "--extra", '{"token": "t0k3n"}')
    old = get_config().get("core", "fernet_key")
    result = flux("rotate-fernet-key")
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 2 stored secret row(s)" in result.output
    new = get_config().get("core", "fernet_key")
    assert new != old and "," not in new
    assert new not in result.output  # the key itself is never printed
    assert get_connection("w").password == "pa@ss-w0rd"
    assert get_connection("api").extra == {"token": "t0k3n"}


def test_connections_help_lists_the_subcommands() -> None:
    result = flux("connections", "--help")
    assert result.exit_code == 0
    for name in ("add", "list", "get", "delete"):
        assert f"  {name} " in result.output
    assert "rotate-fernet-key" in flux("--help").output


def test_command_module_imports_only_click_at_top() -> None:
    code = (
        "import sys; import flux.cli.commands.connections; "
        "names = ('sqlalchemy', 'cryptography', 'flux.connections', 'flux.db'); "
        "heavy = [m for m in names if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _flux_script() -> str:
    script = Path(sys.executable).with_name("flux")
    return str(script) if script.exists() else (shutil.which("flux") or "flux")


def test_console_script_end_to_end(flux_env: Path) -> None:
    env = dict(os.environ)
    script = _flux_script()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([script, *args], capture_output=True, text=True, env=env, timeout=120)

    added = run("connections", "add", "warehouse", "--uri", URI)
    assert added.returncode == 0, added.stderr
    assert "pa@ss-w0rd" not in added.stdout + added.stderr
    listed = run("connections", "list")
    assert listed.returncode == 0 and "warehouse" in listed.stdout and "***" in listed.stdout
    missing = run("connections", "get", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "Error: connection 'nope' not found; add it with: flux connections add nope --uri ..."
    )
    assert "Traceback" not in missing.stderr
    rotated = run("rotate-fernet-key")
    assert rotated.returncode == 0, rotated.stderr
    reset_config()
    assert get_connection("warehouse") == ConnectionInfo.from_uri("warehouse", URI)
    # The raw database never saw the password.
    if os.environ.get("FLUX_TEST_DATABASE", "sqlite") == "sqlite":
        from flux.db import dispose_all

        dispose_all()
        raw = b"".join(path.read_bytes() for path in flux_env.glob("flux.db*"))
        assert b"db.example.com" in raw and b"pa@ss-w0rd" not in raw


def test_adding_through_the_api_then_reading_through_the_cli() -> None:
    add_connection(ConnectionInfo(conn_id="x", conn_type="postgres", host="h", password="p4ss"))
    shown = flux("connections", "get", "x")
    assert shown.exit_code == 0 and "p4ss" not in shown.output and "***" in shown.output
