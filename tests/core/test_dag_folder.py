"""The scheduler's DAG folder: one dag_id defined in two files, while files come and go between
refreshes. Whichever file changed, the file that does not keep the dag_id has exactly one
``DuplicateDagIdError`` import error, and the ``dag`` table points at the file that keeps it."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from flux.dagbag import last_line
from flux.db import session_scope
from flux.models import DagModel, ImportErrorRecord
from flux.scheduler import DagFolder

DAG_FILE = """
from datetime import datetime
from flux import DAG
from flux.operators import EmptyOperator

with DAG("{dag_id}", start_date=datetime(2024, 1, 1), schedule_interval=None) as dag:
    EmptyOperator(task_id="{task_id}")
"""


def define(folder: Path, name: str, dag_id: str, task_id: str = "work") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(DAG_FILE.format(dag_id=dag_id, task_id=task_id)))
    return path


def import_errors() -> dict[str, str]:
    """File name -> last line of its error, as recorded."""
    with session_scope() as session:
        rows = session.execute(select(ImportErrorRecord)).scalars().all()
        found = [(os.path.basename(row.filename), last_line(row.stacktrace or "")) for row in rows]
    assert len(found) == len({name for name, _ in found}), f"two rows for one file: {found}"
    return dict(found)


def dag_row(dag_id: str) -> tuple[str, bool]:
    with session_scope() as session:
        row = session.get(DagModel, dag_id)
        return os.path.basename(row.fileloc or ""), row.is_active


def duplicate(dag_id: str, keeps: Path, other: Path) -> str:
    return f"DuplicateDagIdError: DAG {dag_id!r} is defined in {keeps} and in {other}"


def test_at_start_up_the_first_file_in_path_order_keeps_a_dag_id(tmp_path: Path) -> None:
    first = define(tmp_path / "dags", "a.py", "same", "from_a")
    second = define(tmp_path / "dags", "b.py", "same", "from_b")
    folder = DagFolder(str(tmp_path / "dags"))
    folder.refresh()
    assert folder.dags["same"].task_ids == ["from_a"]
    assert import_errors() == {"b.py": duplicate("same", first, second)}
    assert dag_row("same") == ("a.py", True)


@pytest.mark.parametrize("name", ["a_copy.py", "z_copy.py"])  # before and after it in path order
def test_a_copy_added_later_is_the_duplicate_and_removing_it_leaves_the_dag(
        tmp_path: Path, name: str) -> None:
    original = define(tmp_path / "dags", "m_original.py", "same", "original")
    folder = DagFolder(str(tmp_path / "dags"))
    folder.refresh()
    copy = define(tmp_path / "dags", name, "same", "copied")
    folder.refresh()
    assert folder.dags["same"].task_ids == ["original"]  # the running DAG is not taken over
    assert import_errors() == {name: duplicate("same", original, copy)}
    assert dag_row("same") == ("m_original.py", True)

    copy.unlink()
    folder.refresh()
    assert folder.dags["same"].task_ids == ["original"]
    assert import_errors() == {}
    assert dag_row("same") == ("m_original.py", True)


def test_the_dag_id_goes_to_the_other_file_when_its_file_is_removed(tmp_path: Path) -> None:
    original = define(tmp_path / "dags", "a_original.py", "same", "original")
    other = define(tmp_path / "dags", "b_other.py", "same", "other")
    folder = DagFolder(str(tmp_path / "dags"))
    folder.refresh()
    assert import_errors() == {"b_other.py": duplicate("same", original, other)}

    original.unlink()
    folder.refresh()
    assert folder.dags["same"].task_ids == ["other"]
    assert import_errors() == {}
    assert dag_row("same") == ("b_other.py", True)


def test_renaming_the_dag_id_of_the_duplicate_clears_its_error(tmp_path: Path) -> None:
    define(tmp_path / "dags", "a.py", "same")
    define(tmp_path / "dags", "b.py", "same")
    folder = DagFolder(str(tmp_path / "dags"))
    folder.refresh()
    assert list(import_errors()) == ["b.py"]
    define(tmp_path / "dags", "b.py", "renamed_dag")
    folder.refresh()
    assert import_errors() == {}
    assert sorted(folder.dags) == ["renamed_dag", "same"]
    assert dag_row("renamed_dag") == ("b.py", True)


@pytest.mark.parametrize("importer", ["a_reexport.py", "z_reexport.py"])  # before and after it
def test_a_file_importing_another_files_dag_is_no_duplicate(tmp_path: Path, importer: str) -> None:
    define(tmp_path / "dags", "m_base_dag.py", "base")
    (tmp_path / "dags" / importer).write_text("from m_base_dag import dag  # noqa\n")
    try:
        folder = DagFolder(str(tmp_path / "dags"))
        folder.refresh()
    finally:
        sys.modules.pop("m_base_dag", None)
    assert import_errors() == {}
    assert folder.dags["base"].fileloc == str(tmp_path / "dags" / "m_base_dag.py")
    assert dag_row("base") == ("m_base_dag.py", True)
