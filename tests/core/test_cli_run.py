"""``flux run``, ``flux test`` and ``flux render`` from the command line."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from flux.cli.main import cli
from flux.dates import as_utc
from flux.db import session_scope
from flux.models import TaskInstance

DAG_FILE = """
from datetime import datetime
from flux import DAG
from flux.operators import PythonOperator

def greet(templates_dict, **context):
    print("greeting " + templates_dict["who"])
    return templates_dict["who"]

def explode():
    raise RuntimeError("boom")

with DAG("cli_dag", start_date=datetime(2024, 1, 1), params={"who": "world"}) as dag:
    first = PythonOperator(task_id="first", python_callable=greet,
                           templates_dict={"who": "{{ params.who }} on {{ ds }}"})
    second = PythonOperator(task_id="second", python_callable=explode)
    first >> second
"""


@pytest.fixture
def dag_file(tmp_path: Path) -> str:
    path = tmp_path / "cli_dag.py"
    path.write_text(textwrap.dedent(DAG_FILE))
    return str(path)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def state(task_id: str, day: int = 1) -> str | None:
    with session_scope() as session:
        ti = session.get(TaskInstance, ("cli_dag", task_id, as_utc(datetime(2024, 1, day))))
        return ti.state if ti is not None else None


def test_run_announces_its_log_and_records_success(dag_file: str, flux_env: Path) -> None:
    code, output = invoke("run", "cli_dag", "first", "2024-01-01", "-sd", dag_file)
    assert code == 0, output
    expected = flux_env / "logs" / "cli_dag" / "first" / "2024-01-01T00:00:00" / "1.log"
    assert f"Logging into: {expected}" in output
    log = expected.read_text()
    assert "Filling up the DagBag from" in log
    assert "greeting world on 2024-01-01" in log
    assert state("first") == "success"


def test_run_checks_dependencies_unless_told_not_to(dag_file: str) -> None:
    code, output = invoke("run", "cli_dag", "second", "2024-01-01", "-sd", dag_file)
    assert code == 0
    assert "Dependencies not met" in output and "first" in output
    assert state("second") is None
    code, output = invoke("run", "cli_dag", "second", "2024-01-01", "-sd", dag_file, "-i")
    assert code == 1
    assert state("second") == "failed"


def test_run_mark_success_and_force(dag_file: str) -> None:
    code, _ = invoke("run", "cli_dag", "second", "2024-01-01", "-sd", dag_file, "-m")
    assert code == 0
    assert state("second") == "success"
    code, output = invoke("run", "cli_dag", "second", "2024-01-01", "-sd", dag_file)
    assert "already succeeded" in output
    code, output = invoke("run", "cli_dag", "second", "2024-01-01", "-sd", dag_file, "-f", "-i")
    assert code == 1
    assert state("second") == "failed"


def test_test_command_prints_the_log_and_records_nothing(
    dag_file: str, capfd: pytest.CaptureFixture[str]
) -> None:
    code, _ = invoke("test", "cli_dag", "first", "2024-01-02", "-sd", dag_file)
    out = capfd.readouterr().out
    assert code == 0
    assert "greeting world on 2024-01-02" in out
    assert state("first", day=2) is None
    code, _ = invoke("test", "cli_dag", "second", "2024-01-02", "-sd", dag_file)
    assert code == 1
    assert "RuntimeError: boom" in capfd.readouterr().out
    assert state("second", day=2) is None


def test_render_shows_rendered_fields(dag_file: str) -> None:
    code, output = invoke("render", "cli_dag", "first", "2024-01-03", "-sd", dag_file)
    assert code == 0, output
    assert "# property: templates_dict" in output
    assert "world on 2024-01-03" in output


@pytest.mark.parametrize(("args", "message"), [
    (("run", "nope", "first", "2024-01-01"), "DAG 'nope' not found"),
    (("run", "cli_dag", "nope", "2024-01-01"), "task 'nope' not found in DAG 'cli_dag'"),
    (("run", "cli_dag", "first", "2024-02-30"), "invalid date '2024-02-30'"),
    (("test", "cli_dag", "first", "yesterday"), "invalid date 'yesterday'"),
    (("render", "cli_dag", "nope", "2024-01-01"), "task 'nope' not found"),
])
def test_bad_input_is_one_clear_line(dag_file: str, args: tuple[str, ...], message: str) -> None:
    code, output = invoke(*args, "-sd", dag_file)
    assert code != 0
    assert message in output
    assert "Traceback" not in output
