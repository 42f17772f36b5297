"""Connection secrets: ciphertext at rest, ``***`` wherever Flux shows or records them.

The connection is added the way users do (``flux connections add``), with a password and the
secret-looking extras ``api_key``, ``token`` and ``client_secret`` next to a plain ``region``.
Then: the bytes of the SQLite file, and the rows of a MariaDB database read with plain SQL, hold
none of them; task logs, rendered fields and ``flux connections`` output show ``***``; and after
``flux rotate-fernet-key`` every secret still decrypts, while the old key alone no longer does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy import text

from flux import config, crypto
from flux.db import dispose_all, get_engine, is_sqlite

from .conftest import flux_cli, raw_bytes_of_sqlite, write_dag

PASSWORD = "Pw-7f3a/9c2e@secret"
EXTRA_SECRETS = {"api_key": "AK-91b2c3d4e5f6", "token": "tok-5e6f7a8b9c0d",
                 "client_secret": "cs-0a1b2c3d4e5f"}
PLAIN_EXTRA = {"region": "eu-west-9"}
HOST = "vault.internal.test"
URI = (f"http://svc:{quote(PASSWORD, safe='')}@{HOST}:8200?"
       + urlencode({**EXTRA_SECRETS, **PLAIN_EXTRA}))
#: every form a secret could leak in (the password also %-quoted, as it is inside a URI)
LEAKS = [PASSWORD, quote(PASSWORD, safe=""), *EXTRA_SECRETS.values()]


def add_vault() -> None:
    result = flux_cli("connections", "add", "vault", "--uri", URI)
    assert result.exit_code == 0, result.output
    assert_no_secret(result.output)


def assert_no_secret(shown: str | bytes, where: str = "output") -> None:
    if isinstance(shown, bytes):
        found = [leak for leak in LEAKS if leak.encode() in shown]
    else:
        found = [leak for leak in LEAKS if leak in shown]
    assert not found, f"secret {found[0]!r} in the {where}"


def stored_rows() -> list[tuple[str | None, str | None]]:
    """``(password, extra)`` of every stored connection, read with plain SQL."""
    with get_engine().connect() as conn:
        return [tuple(row) for row in conn.execute(text("SELECT password, extra FROM connection"))]


def fernet_tokens(extra: str) -> list[str]:
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if set(value) == {"$fernet"}:
                found.append(value["$fernet"])
            for item in value.values():
                walk(item)

    walk(json.loads(extra))
    return found


# --- at rest ---------------------------------------------------------------------------------------

def test_secrets_are_ciphertext_in_the_sqlite_file(flux_env: Path) -> None:
    if not is_sqlite():
        pytest.skip("this test reads the bytes of the SQLite file")
    add_vault()
    dispose_all()
    data = raw_bytes_of_sqlite(flux_env / "flux.db")
    assert HOST.encode() in data and PLAIN_EXTRA["region"].encode() in data, "not the right bytes"
    assert_no_secret(data, "SQLite file")
    [(password, extra)] = stored_rows()
    assert password and password.startswith("gAAAAA")  # a Fernet token
    assert len(fernet_tokens(extra)) == len(EXTRA_SECRETS)


def test_secrets_are_ciphertext_in_mariadb(mysql_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import pymysql
    from sqlalchemy.engine import make_url

    monkeypatch.setenv("FLUX_DATABASE_URL", mysql_url)
    config.reset_config()
    dispose_all()
    assert flux_cli("db", "init").exit_code == 0
    add_vault()
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root",
                           database=make_url(mysql_url).database, charset="utf8mb4")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT * FROM connection")
            rows = cursor.fetchall()
    finally:
        conn.close()
    dump = repr(rows)
    assert HOST in dump and PLAIN_EXTRA["region"] in dump, "not the right rows"
    assert_no_secret(dump, "MariaDB rows")


# --- shown -----------------------------------------------------------------------------------------

def test_connections_commands_show_stars(monkeypatch: pytest.MonkeyPatch) -> None:
    add_vault()
    monkeypatch.setenv("FLUX_CONN_FROM_ENV", URI.replace("http://", "mysql://"))
    config.reset_config()
    for args in (["list"], ["list", "--json"], ["get", "vault"], ["get", "vault", "--json"],
                 ["get", "from_env"], ["get", "from_env", "--json"]):
        result = flux_cli("connections", *args)
        assert result.exit_code == 0, result.output
        assert_no_secret(result.output, f"output of flux connections {' '.join(args)}")
        assert "***" in result.output
        assert HOST in result.output


DAG_BODY = '''
import logging
from datetime import datetime

from flux import DAG
from flux.hooks.base import BaseHook
from flux.operators import BashOperator, PythonOperator

# read while the file is imported, handed on to tasks that run later (in other processes too)
VAULT = BaseHook.get_connection("vault")


def prints():
    conn = BaseHook.get_connection("vault")
    print("password:", conn.password)
    print("api_key:", conn.extra["api_key"], "token:", conn.extra["token"])
    logging.getLogger("custom").warning("logged %s and %s", conn.password, conn.extra["client_secret"])


def raises():
    conn = BaseHook.get_connection("vault")
    raise RuntimeError(f"login refused for {{conn.login}}:{{conn.password}}")


def got(password, api_key):
    print("got", password, api_key)


with DAG("secrets", start_date=datetime(2024, 1, 1), schedule_interval="@once") as dag:
    PythonOperator(task_id="prints", python_callable=prints)
    PythonOperator(task_id="raises", python_callable=raises)
    BashOperator(task_id="templated", bash_command="echo {{{{ params.password }}}} {{{{ params.key }}}}",
                 params={{"password": VAULT.password, "key": VAULT.extra["api_key"]}})
    PythonOperator(task_id="kwargs", python_callable=got,
                   op_kwargs={{"password": VAULT.password, "api_key": "{{{{ params.key }}}}"}},
                   params={{"key": VAULT.extra["api_key"]}})
'''
TASKS = ["prints", "raises", "templated", "kwargs"]


@pytest.mark.parametrize("how", ["backfill", "run"])
def test_task_logs_and_rendered_fields_show_stars(how: str, tmp_path: Path, flux_env: Path) -> None:
    """Run by LocalExecutor workers (forked, long-lived) or by `flux run`, one process per task."""
    add_vault()
    dags = tmp_path / "dags"
    write_dag(dags, "secrets", DAG_BODY.format())
    env = {**os.environ, "FLUX__CORE__EXECUTOR": "local", "FLUX__CORE__PARALLELISM": "2"}
    commands = ([["backfill", "secrets", "-s", "2024-01-01", "-e", "2024-01-01", "-sd", str(dags)]]
                if how == "backfill" else
                [["run", "secrets", task, "2024-01-01", "-sd", str(dags)] for task in TASKS])
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "flux.cli.main", *command], env=env,
                              capture_output=True, text=True, timeout=120)
        assert_no_secret(done.stdout + done.stderr, f"output of flux {command[0]}")

    from flux.db import session_scope
    from flux.models import TaskInstance
    from flux.state import State
    from flux.tasklog import log_path

    with session_scope() as session:
        instances = {ti.task_id: (ti.state, ti.rendered_fields, ti.execution_date)
                     for ti in session.query(TaskInstance).filter_by(dag_id="secrets")}
    assert {task: state for task, (state, _, _) in instances.items()} == {
        "prints": State.SUCCESS, "raises": State.FAILED, "templated": State.SUCCESS,
        "kwargs": State.SUCCESS}
    for task in TASKS:
        log = log_path("secrets", task, instances[task][2], 1).read_text(encoding="utf-8")
        assert_no_secret(log, f"log of {task}")
        assert "***" in log, f"the log of {task} shows no masked secret:\n{log}"
    assert "RuntimeError: login refused for svc:***" in log_path(
        "secrets", "raises", instances["raises"][2], 1).read_text(encoding="utf-8")
    for task in ("templated", "kwargs"):
        rendered = instances[task][1]
        assert rendered and "***" in rendered, rendered
        assert_no_secret(rendered, f"rendered fields of {task}")


# --- rotation --------------------------------------------------------------------------------------

def test_rotated_key_decrypts_everything_and_the_old_key_nothing(flux_env: Path) -> None:
    from cryptography.fernet import Fernet, InvalidToken

    from flux.connections import get_connection

    add_vault()
    [old_key] = crypto.configured_keys()
    [(old_password, old_extra)] = stored_rows()

    result = flux_cli("rotate-fernet-key")
    assert result.exit_code == 0, result.output
    config.reset_config()
    crypto.clear_cache()
    [new_key] = crypto.configured_keys()
    assert new_key != old_key
    assert old_key not in (flux_env / "flux.toml").read_text()

    info = get_connection("vault")
    assert info.password == PASSWORD
    assert info.extra == {**EXTRA_SECRETS, **PLAIN_EXTRA}
    [(password, extra)] = stored_rows()
    assert password != old_password and extra != old_extra
    tokens = [password, *fernet_tokens(extra)]
    assert len(tokens) == 1 + len(EXTRA_SECRETS)
    for token in tokens:
        Fernet(new_key.encode()).decrypt(token.encode())
        with pytest.raises(InvalidToken):
            Fernet(old_key.encode()).decrypt(token.encode())

    env = {**os.environ, "FLUX__CORE__FERNET_KEY": old_key}
    done = subprocess.run([sys.executable, "-m", "flux.cli.main", "connections", "get", "vault"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "cannot decrypt" in done.stderr and "Traceback" not in done.stderr
    assert_no_secret(done.stdout + done.stderr)
