"""``flux dags ...`` and ``flux tasks ...`` through click, against a real metadata database."""

from __future__ import annotations

import getpass
import json
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from flux.cli.main import cli
from flux.config import reset_config
from flux.dates import UTC
from flux.db import session_scope
from flux.models import AuditLog, DagModel, DagRun, ImportErrorRecord

REPO_ROOT = Path(__file__).resolve().parents[2]

PIPELINE = """
from datetime import datetime, timedelta
from flux import DAG
from flux.operators import EmptyOperator

with DAG("pipeline", start_date=datetime(2014, 9, 1), schedule_interval=timedelta(days=1),
         default_args={"owner": "max"}) as dag:
    extract = EmptyOperator(task_id="extract")
    transform = EmptyOperator(task_id="transform")
    load = EmptyOperator(task_id="load")
    extract >> transform >> load

with DAG("hourly", start_date=datetime(2024, 1, 1), schedule_interval="@hourly",
         is_paused_upon_creation=True) as other:
    EmptyOperator(task_id="only", owner="ops")
"""

BROKEN = """
from flux import DAG
from flux.operators import EmptyOperator
with DAG("broken") as dag:
    a = EmptyOperator(task_id="a")
    a >> a
"""


def flux(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    reset_config()
    return result


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.fixture
def dags(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    return folder


def with_broken(dags: Path) -> Path:
    (dags / "nested").mkdir()
    path = dags / "nested" / "broken.py"
    path.write_text(textwrap.dedent(BROKEN))
    return path


# --- dags list -------------------------------------------------------------------------------------


def test_dags_list_table_and_broken_files(dags: Path) -> None:
    broken = with_broken(dags)
    result = flux("dags", "list", "-sd", str(dags))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["dag_id", "file", "owner", "schedule", "paused", "tasks"]
    assert lines[2].split() == ["hourly", "pipeline.py", "ops", "@hourly", "True", "1"]
    assert lines[3].split() == ["pipeline", "pipeline.py", "max", "1", "day", "False", "3"]
    assert "Broken DAG files (1):" in result.output
    assert (f"  {Path('nested') / 'broken.py'}: (line 6) DagCycleError: task 'a' cannot depend on itself"
            in lines)
    with session_scope() as session:
        assert session.get(DagModel, "pipeline").fileloc == str(dags / "pipeline.py")
        assert session.get(DagModel, "hourly").is_paused is True
        rows = session.execute(select(ImportErrorRecord.filename)).scalars().all()
    assert rows == [str(broken)]


def test_dags_list_json(dags: Path) -> None:
    with_broken(dags)
    result = flux("dags", "list", "--subdir", str(dags), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [d["dag_id"] for d in data["dags"]] == ["hourly", "pipeline"]
    assert data["dags"][1] == {"dag_id": "pipeline", "file": "pipeline.py", "owner": "max",
                               "schedule": "1 day", "paused": False, "tasks": 3}
    assert data["import_errors"][0]["file"] == str(Path("nested") / "broken.py")
    assert "DagCycleError" in data["import_errors"][0]["error"]


def test_dags_list_uses_the_configured_folder(flux_env: Path) -> None:
    folder = flux_env / "dags"
    folder.mkdir()
    (folder / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    result = flux("dags", "list")
    assert result.exit_code == 0, result.output
    assert "pipeline" in result.output and "Broken" not in result.output


def test_dags_list_empty_and_missing_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = flux("dags", "list", "-sd", str(empty))
    assert result.exit_code == 0 and f"No DAGs found in {empty}" in result.output
    error = one_line_error(flux("dags", "list", "-sd", str(tmp_path / "missing")))
    assert error == f"Error: DAG folder {tmp_path / 'missing'} does not exist"


def test_fixing_a_file_removes_it_from_the_broken_list(dags: Path) -> None:
    broken = with_broken(dags)
    assert "Broken DAG files" in flux("dags", "list", "-sd", str(dags)).output
    broken.write_text("from flux import DAG\ndag = DAG('fixed')\n")
    result = flux("dags", "list", "-sd", str(dags))
    assert "Broken DAG files" not in result.output and "fixed" in result.output
    with session_scope() as session:
        assert session.execute(select(ImportErrorRecord)).first() is None


# --- dags show -------------------------------------------------------------------------------------


def test_dags_show_prints_the_tree(dags: Path) -> None:
    result = flux("dags", "show", "pipeline", "-sd", str(dags / "pipeline.py"))
    assert result.exit_code == 0, result.output
    assert result.output == (
        "<Task(EmptyOperator): load>\n"
        "    <Task(EmptyOperator): transform>\n"
        "        <Task(EmptyOperator): extract>\n"
    )


def test_unknown_dag_is_a_one_line_error(dags: Path) -> None:
    error = one_line_error(flux("dags", "show", "nope", "-sd", str(dags)))
    assert error == f"Error: DAG 'nope' not found in {dags}; available: hourly, pipeline"


def test_unknown_dag_in_a_broken_file_says_so(dags: Path) -> None:
    with_broken(dags)
    error = one_line_error(flux("dags", "show", "broken", "-sd", str(dags)))
    assert "broken.py mentions it but failed to import" in error
    assert "DagCycleError" in error


# --- pause / unpause -------------------------------------------------------------------------------


def paused(dag_id: str) -> bool:
    with session_scope() as session:
        return session.get(DagModel, dag_id).is_paused


def audit_events() -> list[tuple[str, str | None, str | None]]:
    with session_scope() as session:
        return [(r.event, r.dag_id, r.owner)
                for r in session.execute(select(AuditLog).order_by(AuditLog.id)).scalars()]


def test_pause_and_unpause(dags: Path) -> None:
    result = flux("dags", "pause", "pipeline", "-sd", str(dags))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "DAG 'pipeline' is now paused"
    assert paused("pipeline") is True
    assert flux("dags", "pause", "pipeline", "-sd", str(dags)).output.strip() == (
        "DAG 'pipeline' was already paused")
    assert flux("dags", "unpause", "pipeline", "-sd", str(dags)).output.strip() == (
        "DAG 'pipeline' is now unpaused")
    assert paused("pipeline") is False
    user = getpass.getuser()
    assert audit_events() == [("pause", "pipeline", user), ("pause", "pipeline", user),
                              ("unpause", "pipeline", user)]


def test_pause_a_dag_known_only_to_the_database(dags: Path, tmp_path: Path) -> None:
    flux("dags", "list", "-sd", str(dags))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = flux("dags", "pause", "pipeline", "-sd", str(elsewhere))
    assert result.exit_code == 0, result.output
    assert paused("pipeline") is True


def test_pause_unknown_dag(dags: Path) -> None:
    error = one_line_error(flux("dags", "pause", "ghost", "-sd", str(dags)))
    assert error.startswith("Error: DAG 'ghost' not found in")
    assert audit_events() == []


# --- trigger ---------------------------------------------------------------------------------------


def test_trigger_creates_a_queued_manual_run(dags: Path) -> None:
    result = flux("dags", "trigger", "pipeline", "-sd", str(dags), "-e", "2014-09-05",
                  "--conf", '{"source": "cli", "n": 2}')
    assert result.exit_code == 0, result.output
    run_id = "manual__2014-09-05T00:00:00+00:00"
    assert result.output.strip() == (
        f"Created run {run_id} of DAG 'pipeline' for 2014-09-05 00:00:00 "
        '(state queued, conf {"source": "cli", "n": 2})'
    )
    with session_scope() as session:
        run = session.execute(select(DagRun)).scalar_one()
        assert (run.dag_id, run.run_id, run.state, run.run_type, run.external_trigger) == (
            "pipeline", run_id, "queued", "manual", True)
        assert run.execution_date == datetime(2014, 9, 5, tzinfo=UTC)
        assert json.loads(run.conf) == {"source": "cli", "n": 2}
        audit = session.execute(select(AuditLog)).scalar_one()
        assert (audit.event, audit.dag_id, audit.execution_date) == (
            "trigger", "pipeline", datetime(2014, 9, 5, tzinfo=UTC))
        assert json.loads(audit.extra)["run_id"] == run_id


def test_trigger_without_date_or_conf(dags: Path) -> None:
    result = flux("dags", "trigger", "pipeline", "-sd", str(dags))
    assert result.exit_code == 0, result.output
    with session_scope() as session:
        run = session.execute(select(DagRun)).scalar_one()
    assert run.run_id.startswith("manual__") and json.loads(run.conf) == {}


def test_trigger_twice_for_one_date_is_refused(dags: Path) -> None:
    assert flux("dags", "trigger", "pipeline", "-sd", str(dags), "-e", "2014-09-05").exit_code == 0
    error = one_line_error(flux("dags", "trigger", "pipeline", "-sd", str(dags),
                                "--exec-date", "2014-09-05"))
    assert error == ("Error: DAG 'pipeline' already has a run for 2014-09-05 00:00:00 "
                     "(run_id manual__2014-09-05T00:00:00+00:00, state queued)")


@pytest.mark.parametrize(("conf", "expected"), [
    ("{not json", "Error: --conf is not valid JSON: Expecting property name enclosed in double quotes"),
    ("[1, 2]", "Error: --conf must be a JSON object"),
])
def test_trigger_with_bad_conf(dags: Path, conf: str, expected: str) -> None:
    error = one_line_error(flux("dags", "trigger", "pipeline", "-sd", str(dags), "--conf", conf))
    assert error.startswith(expected)
    with session_scope() as session:
        assert session.execute(select(DagRun)).first() is None


def test_trigger_unknown_dag_and_bad_date(dags: Path) -> None:
    assert "DAG 'ghost' not found" in one_line_error(flux("dags", "trigger", "ghost", "-sd", str(dags)))
    result = flux("dags", "trigger", "pipeline", "-sd", str(dags), "-e", "someday")
    assert result.exit_code == 2 and "invalid date 'someday'" in result.output


# --- tasks -----------------------------------------------------------------------------------------


def test_tasks_list_and_tree(dags: Path) -> None:
    result = flux("tasks", "list", "pipeline", "-sd", str(dags))
    assert result.output == "extract\nload\ntransform\n"
    tree = flux("tasks", "list", "pipeline", "--tree", "-sd", str(dags))
    assert tree.output.splitlines()[0] == "<Task(EmptyOperator): load>"
    assert one_line_error(flux("tasks", "list", "ghost", "-sd", str(dags))).startswith(
        "Error: DAG 'ghost' not found")


def test_tasks_state(dags: Path) -> None:
    from flux.cli.loading import load_dag
    from flux.taskrunner import RunOptions, run_task_instance

    result = flux("tasks", "state", "pipeline", "extract", "2014-09-01", "-sd", str(dags))
    assert (result.exit_code, result.output) == (0, "None\n")
    dag = load_dag("pipeline", str(dags))
    run_task_instance(dag.get_task("extract"), datetime(2014, 9, 1), RunOptions())
    result = flux("tasks", "state", "pipeline", "extract", "2014-09-01T00:00:00", "-sd", str(dags))
    assert result.output == "success\n"
    error = one_line_error(flux("tasks", "state", "pipeline", "nope", "2014-09-01", "-sd", str(dags)))
    assert error == "Error: task 'nope' not found in DAG 'pipeline'"


# --- the example DAGs ------------------------------------------------------------------------------


def test_example_dags_load() -> None:
    pytest.importorskip("flux_bash")
    from flux.dagbag import DagBag

    bag = DagBag(REPO_ROOT / "examples" / "dags")
    assert {"example_2", "tutorial"} <= set(bag.dags)
    example = bag.get_dag("example_2")
    assert example.tree_lines() == [
        "<Task(BashOperator): run_after_loop>",
        "    <Task(BashOperator): runme_0>",
        "    <Task(BashOperator): runme_1>",
        "    <Task(BashOperator): runme_2>",
    ]
    assert example.owner == "max" and example.start_date == datetime(2014, 9, 1, tzinfo=UTC)
    tutorial = bag.get_dag("tutorial")
    assert tutorial.get_task("wait_for_file").mode == "reschedule"
    assert [t.task_id for t in tutorial.topological_sort()] == [
        "write_file", "wait_for_file", "count_words", "report"]
