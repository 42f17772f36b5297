"""Broken DAG files next to a good DAG, under a real ``flux scheduler``: a syntax error, a missing
module, a dependency cycle, a dag_id another file already defines, a bad cron expression and a
``while True:`` at module level. They appear while the scheduler runs the good DAG.

Each broken file gives exactly one ``import_error`` row whose message names the problem, and one
entry in the DAG list's banner; the good DAG keeps running meanwhile; rewriting a broken file as a
valid DAG (the scheduler still running) removes its row, and only its row, and its DAG appears in
the ``dag`` table.

The scheduler runs once for the whole module (fixture ``scenario``), which records what it saw at
each step; the tests check those observations. So without flux-web installed only the banner tests
are skipped.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from .conftest import FluxProcesses, wait_for, write_dag

IMPORT_TIMEOUT = 2
#: upper bound of one step (a few refreshes of the DAG folder, 0.5 s apart, an import timeout, a
#: run of the good DAG every 2 s): never reached when things work
STEP_BOUND = 30.0
#: how many of the good DAG's runs must succeed while the broken files are there
GOOD_RUNS = 3
VIEWER = ("vera", "vera-password")

GOOD_DAG = '''
from datetime import datetime, timedelta

from flux import DAG
from flux.operators import PythonOperator

with DAG("good", start_date=datetime.fromisoformat({start!r}), catchup=False,
         schedule_interval=timedelta(seconds=2)) as dag:
    PythonOperator(task_id="tick", python_callable=lambda: "tick")
'''

FIXED_DAG = '''
from datetime import datetime

from flux import DAG
from flux.operators import EmptyOperator

with DAG("fixed_{name}", start_date=datetime(2024, 1, 1), schedule_interval=None) as dag:
    EmptyOperator(task_id="noop")
'''


@dataclass(frozen=True)
class Case:
    """One broken file: its source, and what its error message must say."""

    name: str
    source: str
    #: substrings of the message's last line ("{folder}": the DAG folder; "{timeout}": the
    #: import timeout)
    expected: tuple[str, ...]


CASES = [
    Case("syntax_error", """
        from flux import DAG

        def broken(:
            pass
        """, ("SyntaxError",)),
    Case("import_error", """
        from flux import DAG
        import flux_tests_no_such_module
        """, ("ModuleNotFoundError", "flux_tests_no_such_module")),
    Case("cycle", """
        from datetime import datetime

        from flux import DAG
        from flux.operators import EmptyOperator

        with DAG("cyclic", start_date=datetime(2024, 1, 1), schedule_interval=None) as dag:
            first = EmptyOperator(task_id="first")
            second = EmptyOperator(task_id="second")
            first >> second >> first
        """, ("DagCycleError", "'cyclic'", "'second' >> 'first' closes a loop")),
    # added after good.py, though it sorts before it: good.py keeps its dag_id
    Case("copy_of_good", """
        from datetime import datetime

        from flux import DAG
        from flux.operators import EmptyOperator

        with DAG("good", start_date=datetime(2024, 1, 1), schedule_interval=None) as dag:
            EmptyOperator(task_id="impostor")
        """, ("DuplicateDagIdError", "'good'", "{folder}/good.py and in {folder}/copy_of_good.py")),
    Case("bad_cron", """
        from datetime import datetime

        from flux import DAG

        dag = DAG("bad_cron", start_date=datetime(2024, 1, 1), schedule_interval="61 * * * *")
        """, ("ScheduleError", "invalid schedule_interval '61 * * * *'")),
    Case("endless_loop", """
        from flux import DAG

        while True:
            pass
        """, ("DagImportError", "{folder}/endless_loop.py took longer than {timeout} s",
              "dagbag_import_timeout")),
]
CASE_IDS = [case.name for case in CASES]
BROKEN_DAG_IDS = {"cyclic", "bad_cron"}


@dataclass
class Observations:
    """What the scenario saw, step by step."""

    folder: Path
    #: (file name, stacktrace) of every import_error row, once every broken file was reported
    errors: list[tuple[str, str]] = field(default_factory=list)
    #: active dag_ids, and the file of 'good', at that moment
    dag_ids: set[str] = field(default_factory=set)
    good_fileloc: str = ""
    #: the good DAG's instances that succeeded after the errors were reported, before any fix
    good_successes: int = 0
    scheduler_alive_while_broken: bool = False
    #: for each fixed file: the import_error file names and active dag_ids once its DAG appeared
    after_fix: dict[str, tuple[set[str], set[str]]] = field(default_factory=dict)
    good_successes_after_fixes: int = 0
    scheduler_exit_code: int | None = None
    #: the DAG list page (None without flux-web), while broken and once all fixed
    page_broken: str | None = None
    page_fixed: str | None = None


# --- the scenario --------------------------------------------------------------------------------


def _errors() -> list[tuple[str, str]]:
    from flux.db import session_scope
    from flux.models import ImportErrorRecord

    with session_scope() as session:
        rows = session.execute(select(ImportErrorRecord.filename, ImportErrorRecord.stacktrace)
                               .order_by(ImportErrorRecord.filename)).all()
    return [(os.path.basename(name), stacktrace or "") for name, stacktrace in rows]


def _active_dags() -> dict[str, str]:
    from flux.db import session_scope
    from flux.models import DagModel

    with session_scope() as session:
        return dict(session.execute(select(DagModel.dag_id, DagModel.fileloc)
                                    .where(DagModel.is_active.is_(True))).all())


def _good_successes(since: datetime | None = None) -> int:
    from flux.db import session_scope
    from flux.models import TaskInstance
    from flux.state import State

    query = select(func.count()).select_from(TaskInstance).where(
        TaskInstance.dag_id == "good", TaskInstance.state == State.SUCCESS)
    if since is not None:
        query = query.where(TaskInstance.start_date >= since)
    with session_scope() as session:
        return session.execute(query).scalar_one()


def _web_client() -> Any:
    """A test client of flux-web and its basic-auth header, or None when flux-web is missing."""
    try:
        from flux_web.app import create_app
        from flux_web.users import create_user
    except ImportError:
        return None
    create_user(*VIEWER, "viewer")
    token = base64.b64encode(f"{VIEWER[0]}:{VIEWER[1]}".encode()).decode()
    return create_app({"TESTING": True}).test_client(), {"Authorization": f"Basic {token}"}


def _dag_list_page(web: Any) -> str:
    client, headers = web
    response = client.get("/dags", headers=headers)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _run_scenario(home: Path) -> Observations:
    from flux.dates import utcnow

    folder = home / "dags"
    seen = Observations(folder=folder)
    start = (utcnow().replace(microsecond=0) - timedelta(seconds=10)).isoformat()
    write_dag(folder, "good", GOOD_DAG.format(start=start))
    processes = FluxProcesses(home)
    try:
        scheduler = processes.start("scheduler", "-sd", str(folder))

        def wait(condition: Callable[[], Any], what: str) -> None:
            try:
                wait_for(condition, what, bound=STEP_BOUND)
            except pytest.fail.Exception:
                pytest.fail(f"gave up waiting for {what}; import errors of "
                            f"{[name for name, _ in _errors()]}; the scheduler's output ends with\n"
                            f"{processes.output(scheduler)[-3000:]}")

        wait(lambda: _good_successes() >= 1, "the good DAG to run before the broken files appear")
        web = _web_client()
        for case in CASES:
            write_dag(folder, case.name, case.source)
        wait(lambda: len(_errors()) >= len(CASES), "every broken file to be reported")
        broken_at = utcnow()
        seen.errors = _errors()
        dags = _active_dags()
        seen.dag_ids, seen.good_fileloc = set(dags), dags.get("good", "")
        if web is not None:
            seen.page_broken = _dag_list_page(web)
        wait(lambda: _good_successes(broken_at) >= GOOD_RUNS,
             f"{GOOD_RUNS} runs of the good DAG to succeed next to the broken files")
        seen.good_successes = _good_successes(broken_at)
        seen.scheduler_alive_while_broken = scheduler.poll() is None
        for case in CASES:
            write_dag(folder, case.name, FIXED_DAG.format(name=case.name))
            wait(lambda case=case: f"fixed_{case.name}" in _active_dags(),
                 f"the scheduler to load the fixed {case.name}.py")
            seen.after_fix[case.name] = ({name for name, _ in _errors()}, set(_active_dags()))
        fixed_at = utcnow()
        wait(lambda: _good_successes(fixed_at) >= 1, "the good DAG to run after the fixes")
        seen.good_successes_after_fixes = _good_successes(fixed_at)
        if web is not None:
            seen.page_fixed = _dag_list_page(web)
        seen.scheduler_exit_code = processes.stop(scheduler)
    finally:
        processes.cleanup()
    return seen


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory,
             metadata_server_url: str | None) -> Observations:
    """Run the scheduler over the broken files once, with a FLUX_HOME and settings of its own."""
    from flux import config, db, plugins

    home = tmp_path_factory.mktemp("bad_dag_files")
    database_url = metadata_server_url or f"sqlite:///{home / 'flux.db'}"
    settings = {
        "FLUX_HOME": str(home),
        "FLUX_DATABASE_URL": database_url,
        "FLUX__CORE__DAGS_FOLDER": str(home / "dags"),
        "FLUX__CORE__DAGBAG_IMPORT_TIMEOUT": str(IMPORT_TIMEOUT),
        "FLUX__CORE__EXECUTOR": "local",
        "FLUX__CORE__PARALLELISM": "2",
        "FLUX__SCHEDULER__LOOP_INTERVAL": "0.2",
        "FLUX__SCHEDULER__DAG_DIR_LIST_INTERVAL": "0.5",
        "FLUX__SCHEDULER__HEARTBEAT_SECONDS": "1",
    }
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith(("FLUX__", "FLUX_CONN_")) or name == "FLUX_DISABLED_PLUGINS":
                env.delenv(name)
        for name, value in settings.items():
            env.setenv(name, value)
        config.reset_config()
        plugins.reset_plugin_manager()
        try:
            return _run_scenario(home)
        finally:
            db.dispose_all()
            config.reset_config()
            plugins.reset_plugin_manager()


# --- the checks ----------------------------------------------------------------------------------


def _last_line(stacktrace: str) -> str:
    from flux.dagbag import last_line

    return last_line(stacktrace)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_each_broken_file_has_one_import_error_naming_the_problem(
        case: Case, scenario: Observations) -> None:
    rows = [stacktrace for name, stacktrace in scenario.errors if name == f"{case.name}.py"]
    assert len(rows) == 1, scenario.errors
    message = _last_line(rows[0])
    for expected in case.expected:
        assert expected.format(folder=scenario.folder, timeout=IMPORT_TIMEOUT) in message, rows[0]


def test_only_the_broken_files_have_import_errors(scenario: Observations) -> None:
    assert sorted(name for name, _ in scenario.errors) == sorted(f"{c.name}.py" for c in CASES)


def test_broken_files_load_no_dag_and_a_copy_does_not_take_over_the_running_one(
        scenario: Observations) -> None:
    assert "good" in scenario.dag_ids
    assert not scenario.dag_ids & BROKEN_DAG_IDS
    assert scenario.good_fileloc == str(scenario.folder / "good.py")


def test_the_good_dag_keeps_running_next_to_the_broken_files(scenario: Observations) -> None:
    assert scenario.good_successes >= GOOD_RUNS
    assert scenario.scheduler_alive_while_broken
    assert scenario.good_successes_after_fixes >= 1
    assert scenario.scheduler_exit_code == 0


@pytest.mark.parametrize("index", range(len(CASES)), ids=CASE_IDS)
def test_fixing_a_file_clears_its_error_only_and_loads_its_dag(
        index: int, scenario: Observations) -> None:
    case = CASES[index]
    errors, dag_ids = scenario.after_fix[case.name]
    still_broken = {f"{c.name}.py" for c in CASES[index + 1:]}
    assert errors == still_broken
    assert f"fixed_{case.name}" in dag_ids
    assert "good" in dag_ids


# --- the banner of the DAG list page -------------------------------------------------------------


def _banner(page: str) -> str:
    start = page.find('id="import-errors"')
    assert start >= 0, "the DAG list has no broken-files banner"
    return page[start:page.index("</section>", start)]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_banner_shows_each_broken_file_and_its_error(case: Case, scenario: Observations) -> None:
    pytest.importorskip("flux_web", reason="flux-web is not installed: no banner to check")
    from markupsafe import escape

    assert scenario.page_broken is not None
    banner = _banner(scenario.page_broken)
    assert f"{len(CASES)} broken DAG files" in banner
    assert banner.count(f"<code>{case.name}.py</code>") == 1
    (stacktrace,) = [s for name, s in scenario.errors if name == f"{case.name}.py"]
    message = _last_line(stacktrace)
    assert str(escape(message)) in banner
    if escape(message) != message:
        assert message not in banner  # shown escaped, never as markup


def test_banner_is_gone_once_every_file_is_fixed(scenario: Observations) -> None:
    pytest.importorskip("flux_web", reason="flux-web is not installed: no banner to check")
    assert scenario.page_fixed is not None
    assert 'id="import-errors"' not in scenario.page_fixed
    assert "broken DAG file" not in scenario.page_fixed
    for case in CASES:
        assert f"fixed_{case.name}" in scenario.page_fixed

