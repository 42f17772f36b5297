"""DagBag: loading good and broken DAG files, import errors in the DB, and the per-process cache."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from flux import dagbag as dagbag_module
from flux.dagbag import DagBag, get_dag_from_file
from flux.db import session_scope
from flux.exceptions import DagImportError, DagNotFound
from flux.models import DagModel, ImportErrorRecord

GOOD = """
from datetime import datetime
from flux import DAG
from flux.operators import EmptyOperator

with DAG("{dag_id}", start_date=datetime(2024, 1, 1), schedule_interval="@daily",
         default_args={{"owner": "{owner}"}}, tags=["t1"], description="good one") as dag:
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""

BROKEN = {
    "syntax.py": "from flux import DAG\ndag = DAG('syntax'\n",
    "importerror.py": "from flux import DAG\nimport module_that_does_not_exist\n",
    "cycle.py": """
from flux import DAG
from flux.operators import EmptyOperator
with DAG("cycle") as dag:
    a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    a >> b >> a
""",
    "badcron.py": "from flux import DAG\ndag = DAG('badcron', schedule_interval='not a cron')\n",
    "duptask.py": """
from flux import DAG
from flux.operators import EmptyOperator
with DAG("duptask") as dag:
    EmptyOperator(task_id="same")
    EmptyOperator(task_id="same")
""",
    "loops.py": "from flux import DAG\ndag = DAG('loops')\nwhile True:\n    pass\n",
    "sneaky_loop.py": """
from flux import DAG
dag = DAG("sneaky")
while True:
    try:
        pass
    except Exception:
        pass
""",
}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def good(folder: Path, name: str, dag_id: str, owner: str = "max") -> Path:
    return write(folder, name, GOOD.format(dag_id=dag_id, owner=owner))


def import_error_rows() -> dict[str, str]:
    with session_scope() as session:
        return {r.filename: r.stacktrace for r in session.execute(select(ImportErrorRecord)).scalars()}


@pytest.fixture
def dags(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    return folder


def test_loads_every_dag_file_recursively(dags: Path) -> None:
    good(dags, "one.py", "one")
    good(dags, "sub/two.py", "two")
    write(dags, "sub/three.py", GOOD.format(dag_id="three", owner="x")
          + "\nother = DAG('three_b', start_date=datetime(2024, 1, 1))\n")
    good(dags, ".hidden/secret.py", "secret")
    good(dags, "__pycache__/cached.py", "cached")
    write(dags, "no_keyword.py", "raise RuntimeError('never imported: no D-A-G in it')\n")
    write(dags, "notes.txt", "DAG")
    bag = DagBag(dags)
    assert bag.dag_ids == ["one", "three", "three_b", "two"]
    assert bag.import_errors == {}
    assert bag.get_dag("two").fileloc == str(dags / "sub" / "two.py")
    assert bag.file_dags == {str(dags / "one.py"): ["one"],
                             str(dags / "sub" / "three.py"): ["three", "three_b"],
                             str(dags / "sub" / "two.py"): ["two"]}
    assert bag.load_seconds >= 0
    assert bag.get_dag("one").task_ids == ["a", "b"]


def test_a_single_file(dags: Path) -> None:
    path = good(dags, "only.py", "only")
    good(dags, "other.py", "other")
    bag = DagBag(str(path))
    assert bag.dag_ids == ["only"]


def test_same_file_names_in_two_folders_do_not_clash(dags: Path) -> None:
    good(dags, "a/dag.py", "from_a")
    good(dags, "b/dag.py", "from_b")
    bag = DagBag(dags)
    assert bag.dag_ids == ["from_a", "from_b"]


def test_sibling_imports_work_and_sys_path_is_restored(dags: Path) -> None:
    write(dags, "helpers_for_bag.py", "OWNER = 'helper-owner'\n")
    write(dags, "uses_helper.py", """
        from datetime import datetime
        from flux import DAG
        from flux.operators import EmptyOperator
        import helpers_for_bag
        with DAG("uses_helper", start_date=datetime(2024, 1, 1)) as dag:
            EmptyOperator(task_id="a", owner=helpers_for_bag.OWNER)
    """)
    before = list(sys.path)
    bag = DagBag(dags)
    assert bag.get_dag("uses_helper").owner == "helper-owner"
    assert sys.path == before
    sys.modules.pop("helpers_for_bag", None)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DagImportError, match=r"DAG folder .*nowhere does not exist"):
        DagBag(tmp_path / "nowhere")
    with pytest.raises(DagImportError, match=r"DAG file .*gone\.py does not exist"):
        DagBag(tmp_path / "gone.py")


def test_default_is_the_configured_dags_folder(flux_env: Path) -> None:
    good(flux_env / "dags", "default.py", "from_default_folder")
    assert DagBag().dag_ids == ["from_default_folder"]


def test_broken_files_become_import_errors_and_the_others_still_load(
        dags: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flux import config

    monkeypatch.setenv("FLUX__CORE__DAGBAG_IMPORT_TIMEOUT", "1")
    config.reset_config()
    good(dags, "fine.py", "fine")
    good(dags, "zz_fine.py", "zz_fine")
    for name, text in BROKEN.items():
        write(dags, name, text)
    write(dags, "zz_dup.py", GOOD.format(dag_id="fine", owner="y"))
    bag = DagBag(dags)
    assert bag.dag_ids == ["fine", "zz_fine"]
    errors = {Path(p).name: e for p, e in bag.import_errors.items()}
    assert sorted(errors) == sorted([*BROKEN, "zz_dup.py"])
    assert "SyntaxError" in errors["syntax.py"]
    assert "No module named 'module_that_does_not_exist'" in errors["importerror.py"]
    assert "DagCycleError" in errors["cycle.py"] and "closes a loop" in errors["cycle.py"]
    assert "ScheduleError" in errors["badcron.py"]
    assert "DuplicateTaskIdError" in errors["duptask.py"]
    for looping in ("loops.py", "sneaky_loop.py"):
        assert "took longer than 1 s" in errors[looping]
    assert errors["zz_dup.py"] == (
        f"DuplicateDagIdError: DAG id 'fine' is defined in both {dags / 'fine.py'} "
        f"and {dags / 'zz_dup.py'}"
    )
    # A traceback shows the DAG file's own line, not Flux's import machinery.
    assert 'cycle.py", line 7' in errors["cycle.py"]
    assert "dagbag.py" not in errors["importerror.py"]

    bag.sync_to_db()
    rows = import_error_rows()
    assert sorted(Path(p).name for p in rows) == sorted(errors)
    assert rows[str(dags / "cycle.py")] == bag.import_errors[str(dags / "cycle.py")]


def test_the_import_timeout_does_not_disturb_an_outer_timer(dags: Path) -> None:
    import signal

    good(dags, "quick.py", "quick")
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 100)
        DagBag(dags, import_timeout=5)
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < remaining <= 100
        assert signal.getsignal(signal.SIGALRM) is not None and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_no_timeout_outside_the_main_thread(dags: Path) -> None:
    import threading

    good(dags, "threaded.py", "threaded")
    result: list[DagBag] = []
    thread = threading.Thread(target=lambda: result.append(DagBag(dags, import_timeout=1)))
    thread.start()
    thread.join()
    assert result[0].dag_ids == ["threaded"]


def test_fixing_a_file_clears_its_import_error_row(dags: Path) -> None:
    good(dags, "ok.py", "ok")
    broken = write(dags, "broken.py", BROKEN["syntax.py"])
    DagBag(dags).sync_to_db()
    assert list(import_error_rows()) == [str(broken)]
    first_stamp = None
    with session_scope() as session:
        first_stamp = session.execute(select(ImportErrorRecord.timestamp)).scalar()

    write(dags, "broken.py", BROKEN["importerror.py"])  # still broken, differently
    DagBag(dags).sync_to_db()
    rows = import_error_rows()
    assert list(rows) == [str(broken)] and "module_that_does_not_exist" in rows[str(broken)]
    with session_scope() as session:
        assert session.execute(select(ImportErrorRecord.timestamp)).scalar() >= first_stamp

    good(dags, "broken.py", "repaired")
    bag = DagBag(dags)
    bag.sync_to_db()
    assert import_error_rows() == {}
    assert bag.dag_ids == ["ok", "repaired"]


def test_deleted_broken_file_loses_its_row(dags: Path) -> None:
    broken = write(dags, "broken.py", BROKEN["cycle.py"])
    DagBag(dags).sync_to_db()
    broken.unlink()
    DagBag(dags).sync_to_db()
    assert import_error_rows() == {}


def test_a_single_file_bag_leaves_other_files_rows_alone(dags: Path) -> None:
    write(dags, "broken.py", BROKEN["cycle.py"])
    path = good(dags, "alone.py", "alone")
    DagBag(dags).sync_to_db()
    DagBag(path).sync_to_db()
    assert list(import_error_rows()) == [str(dags / "broken.py")]


def test_sync_to_db_upserts_dag_rows_and_keeps_is_paused(dags: Path) -> None:
    good(dags, "one.py", "one", owner="max")
    write(dags, "paused.py", """
        from flux import DAG
        dag = DAG("born_paused", is_paused_upon_creation=True, schedule_interval=None)
    """)
    DagBag(dags).sync_to_db()
    with session_scope() as session:
        one = session.get(DagModel, "one")
        assert (one.fileloc, one.owners, one.schedule, one.tags, one.description) == (
            str(dags / "one.py"), "max", "@daily", '["t1"]', "good one")
        assert (one.is_paused, one.is_active, one.last_parsed_time is not None) == (False, True, True)
        assert session.get(DagModel, "born_paused").is_paused is True
        assert session.get(DagModel, "born_paused").schedule == "None"
        one.is_paused = True
        session.get(DagModel, "born_paused").is_paused = False
    good(dags, "one.py", "one", owner="alice")
    DagBag(dags).sync_to_db()
    with session_scope() as session:
        one = session.get(DagModel, "one")
        assert (one.owners, one.is_paused) == ("alice", True)
        assert session.get(DagModel, "born_paused").is_paused is False


def test_a_dag_removed_from_a_file_is_deactivated(dags: Path) -> None:
    good(dags, "one.py", "one")
    DagBag(dags).sync_to_db()
    good(dags, "one.py", "renamed")
    DagBag(dags).sync_to_db()
    with session_scope() as session:
        assert session.get(DagModel, "one").is_active is False
        assert session.get(DagModel, "renamed").is_active is True


def test_get_dag_not_found_lists_ids_and_mentions_broken_files(dags: Path) -> None:
    good(dags, "one.py", "one")
    write(dags, "wanted.py", "from flux import DAG\nimport nope_nope\ndag = DAG('wanted')\n")
    bag = DagBag(dags)
    with pytest.raises(DagNotFound) as info:
        bag.get_dag("wanted")
    message = str(info.value)
    assert message.startswith(f"DAG 'wanted' not found in {dags}")
    assert "wanted.py mentions it but failed to import" in message
    assert "No module named 'nope_nope'" in message
    with pytest.raises(DagNotFound, match="available: one; 1 DAG file failed to import"):
        bag.get_dag("unknown")


@pytest.mark.parametrize("importer", ["a_reexport.py", "z_reexport.py"])  # before and after it
def test_a_dag_imported_from_another_file_is_not_a_duplicate(dags: Path, importer: str) -> None:
    good(dags, "m_base_dag.py", "base")
    write(dags, importer, "from m_base_dag import dag  # noqa\n")
    bag = DagBag(dags)
    assert bag.import_errors == {}
    assert bag.get_dag("base").fileloc == str(dags / "m_base_dag.py")
    assert bag.file_dags == {str(dags / "m_base_dag.py"): ["base"]}
    sys.modules.pop("m_base_dag", None)


def test_a_dag_made_by_a_factory_in_a_helper_module_belongs_to_its_file(dags: Path) -> None:
    write(dags, "factory.py", """
        from datetime import datetime
        from flux import DAG
        def make(dag_id):
            return DAG(dag_id, start_date=datetime(2024, 1, 1))
    """)
    write(dags, "made.py", "import factory\ndag = factory.make('made')\n")
    bag = DagBag(dags)
    assert bag.dag_ids == ["made"]
    assert bag.get_dag("made").fileloc == str(dags / "made.py")
    sys.modules.pop("factory", None)


def test_get_dag_from_file_caches_until_the_file_changes(dags: Path) -> None:
    dagbag_module.clear_cache()
    path = good(dags, "cached.py", "cached")
    first = get_dag_from_file(path, "cached")
    assert get_dag_from_file(str(path), "cached") is first  # same object: not imported again
    path.write_text(GOOD.format(dag_id="cached", owner="someone_else_entirely"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = get_dag_from_file(path, "cached")
    assert second is not first and second.owner == "someone_else_entirely"
    with pytest.raises(DagNotFound):
        get_dag_from_file(path, "other")
    with pytest.raises(DagImportError, match="does not exist"):
        get_dag_from_file(dags / "missing.py", "x")
    dagbag_module.clear_cache()


def test_module_names_are_unique_per_path() -> None:
    from flux.dagbag import module_name

    assert module_name("/a/dag.py") != module_name("/b/dag.py")
    assert module_name("/a/my-dag.py").isidentifier()


def test_sync_keeps_one_row_per_broken_file(dags: Path) -> None:
    from flux.dates import utcnow

    broken = write(dags, "broken.py", BROKEN["cycle.py"])
    with session_scope() as session:
        for _ in range(2):  # as two concurrent syncs could leave them
            session.add(ImportErrorRecord(filename=str(broken), timestamp=utcnow(), stacktrace="old"))
    DagBag(dags).sync_to_db()
    with session_scope() as session:
        rows = session.execute(select(ImportErrorRecord)).scalars().all()
    assert len(rows) == 1 and "DagCycleError" in rows[0].stacktrace
