"""Sensors: poke and reschedule modes, timeouts, soft_fail, FileSensor."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from flux import DAG
from flux.dates import UTC
from flux.db import session_scope
from flux.exceptions import DagDefinitionError
from flux.models import TaskInstance
from flux.sensors import BaseSensorOperator
from flux.state import State
from flux.taskrunner import RunOptions, run_task_instance

DAY1 = datetime(2014, 9, 1, tzinfo=UTC)


class CountingSensor(BaseSensorOperator):
    """True from the ``succeed_on``-th poke on (never when None)."""

    def __init__(self, succeed_on=None, **kwargs):
        super().__init__(**kwargs)
        self.succeed_on = succeed_on
        self.pokes = 0

    def poke(self, context):
        CountingSensor.total_pokes = getattr(CountingSensor, "total_pokes", 0) + 1
        self.pokes += 1
        return self.succeed_on is not None and CountingSensor.total_pokes >= self.succeed_on


@pytest.fixture(autouse=True)
def reset_counter():
    CountingSensor.total_pokes = 0


def run(task, **options):
    return run_task_instance(task, DAY1, RunOptions(**options))


def stored(task) -> TaskInstance:
    with session_scope() as session:
        return session.get(TaskInstance, (task.dag.dag_id, task.task_id, DAY1))


# --- arguments -------------------------------------------------------------------------------------


def test_defaults_and_conversions() -> None:
    sensor = CountingSensor(task_id="s")
    assert (sensor.poke_interval, sensor.timeout, sensor.soft_fail, sensor.mode) == (
        60, 7 * 24 * 3600, False, "poke")
    other = CountingSensor(task_id="o", poke_interval=timedelta(minutes=2), timeout=timedelta(hours=1))
    assert (other.poke_interval, other.timeout) == (120, 3600)


def test_invalid_mode_and_intervals() -> None:
    with pytest.raises(DagDefinitionError, match="invalid sensor mode 'sometimes'"):
        CountingSensor(task_id="s", mode="sometimes")
    with pytest.raises(DagDefinitionError, match="poke_interval must not be negative"):
        CountingSensor(task_id="s", poke_interval=-1)
    with pytest.raises(DagDefinitionError, match="timeout must be a number of seconds"):
        CountingSensor(task_id="s", timeout="1h")


def test_sensor_arguments_from_default_args() -> None:
    with DAG("sensor_defaults", default_args={"poke_interval": 5, "mode": "reschedule"}):
        sensor = CountingSensor(task_id="s")
    assert (sensor.poke_interval, sensor.mode) == (5, "reschedule")


def test_base_sensor_must_implement_poke() -> None:
    with DAG("abstract", start_date=DAY1):
        sensor = BaseSensorOperator(task_id="s", poke_interval=0)
    result = run(sensor)
    assert result.state == State.FAILED and "must implement poke" in result.message


# --- poke mode ---------------------------------------------------------------------------------------


def test_poke_mode_pokes_until_true() -> None:
    with DAG("poking", start_date=DAY1):
        sensor = CountingSensor(task_id="s", succeed_on=3, poke_interval=0)
    result = run(sensor)
    assert result.state == State.SUCCESS
    assert CountingSensor.total_pokes == 3
    assert "Condition met after 3 poke(s)" in Path(result.log_path).read_text()


def test_poke_mode_timeout_fails() -> None:
    with DAG("poke_timeout", start_date=DAY1):
        sensor = CountingSensor(task_id="s", poke_interval=0, timeout=0)
    result = run(sensor)
    assert result.state == State.FAILED
    assert "SensorTimeout" in result.message and "timed out" in result.message


def test_poke_mode_timeout_with_soft_fail_skips() -> None:
    with DAG("poke_soft", start_date=DAY1):
        sensor = CountingSensor(task_id="s", poke_interval=0, timeout=0, soft_fail=True)
    result = run(sensor)
    assert result.state == State.SKIPPED
    assert "soft_fail" in stored(sensor).note


def test_sensor_timeout_is_not_retried_differently_from_a_failure() -> None:
    with DAG("poke_retry", start_date=DAY1):
        sensor = CountingSensor(task_id="s", poke_interval=0, timeout=0, retries=1, retry_delay=0)
    assert run(sensor).state == State.UP_FOR_RETRY


# --- reschedule mode -------------------------------------------------------------------------------


def test_reschedule_mode_gives_the_slot_back_then_succeeds() -> None:
    with DAG("resched", start_date=DAY1):
        sensor = CountingSensor(task_id="s", succeed_on=3, mode="reschedule", poke_interval=0)
    first = run(sensor)
    assert first.state == State.UP_FOR_RESCHEDULE
    ti = stored(sensor)
    first_start = ti.start_date
    assert (ti.state, ti.try_number, ti.next_try_at is not None) == (State.UP_FOR_RESCHEDULE, 0, True)
    assert run(sensor).state == State.UP_FOR_RESCHEDULE
    assert stored(sensor).start_date == first_start  # the first poke's start is kept
    done = run(sensor)
    assert done.state == State.SUCCESS
    ti = stored(sensor)
    assert (ti.try_number, ti.start_date) == (1, first_start)
    assert CountingSensor.total_pokes == 3


def test_reschedule_mode_next_poke_is_poke_interval_later() -> None:
    with DAG("resched_later", start_date=DAY1):
        sensor = CountingSensor(task_id="s", mode="reschedule", poke_interval=300)
    run(sensor)
    ti = stored(sensor)
    gap = (ti.next_try_at - ti.end_date).total_seconds()
    assert 299 <= gap <= 300
    waiting = run(sensor)
    assert waiting.ran is False and "waiting until" in waiting.message


def age_first_poke(sensor, by: timedelta) -> None:
    with session_scope() as session:
        ti = session.get(TaskInstance, (sensor.dag.dag_id, sensor.task_id, DAY1))
        ti.start_date = ti.start_date - by


def test_reschedule_mode_timeout_is_measured_from_the_first_poke() -> None:
    with DAG("resched_timeout", start_date=DAY1):
        sensor = CountingSensor(task_id="s", mode="reschedule", poke_interval=0,
                                timeout=timedelta(hours=1))
    assert run(sensor).state == State.UP_FOR_RESCHEDULE
    age_first_poke(sensor, timedelta(hours=2))
    result = run(sensor)
    assert result.state == State.FAILED and "SensorTimeout" in result.message


def test_reschedule_mode_soft_fail() -> None:
    with DAG("resched_soft", start_date=DAY1):
        sensor = CountingSensor(task_id="s", mode="reschedule", poke_interval=0,
                                timeout=timedelta(hours=1), soft_fail=True)
    run(sensor)
    age_first_poke(sensor, timedelta(hours=2))
    assert run(sensor).state == State.SKIPPED


# --- FileSensor --------------------------------------------------------------------------------------


def dag_in(folder: Path, dag_id: str) -> DAG:
    dag_file = folder / f"{dag_id}.py"
    dag_file.write_text("# the DAG file\n")
    dag = DAG(dag_id, start_date=DAY1)
    dag.fileloc = str(dag_file)
    return dag


def test_file_sensor_relative_path_is_next_to_the_dag_file(tmp_path: Path) -> None:
    from flux.operators import FileSensor

    dag = dag_in(tmp_path, "files")
    sensor = FileSensor(task_id="wait", filepath="data/{{ ds_nodash }}.csv", poke_interval=0,
                        timeout=0, dag=dag)
    assert run(sensor).state == State.FAILED
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "20140901.csv").write_text("x\n")
    assert run(sensor, force=True).state == State.SUCCESS


def test_file_sensor_glob_and_folders(tmp_path: Path) -> None:
    from flux.operators import FileSensor

    dag = dag_in(tmp_path, "globs")
    glob_sensor = FileSensor(task_id="glob", filepath=str(tmp_path / "in" / "*.done"),
                             poke_interval=0, timeout=0, dag=dag)
    folder_sensor = FileSensor(task_id="folder", filepath=str(tmp_path / "box"),
                               poke_interval=0, timeout=0, dag=dag)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.tmp").write_text("")
    (tmp_path / "box").mkdir()
    assert run(glob_sensor).state == State.FAILED
    assert run(folder_sensor).state == State.FAILED  # an empty folder does not count
    (tmp_path / "in" / "a.done").write_text("")
    (tmp_path / "box" / "item").write_text("")
    assert run(glob_sensor, force=True).state == State.SUCCESS
    assert run(folder_sensor, force=True).state == State.SUCCESS


def test_file_sensor_in_reschedule_mode_waits_for_the_upstream_file(tmp_path: Path) -> None:
    from flux.operators import FileSensor, PythonOperator

    dag = dag_in(tmp_path, "pipeline")
    target = tmp_path / "out" / "ready.txt"

    def make_file():
        target.parent.mkdir()
        target.write_text("ok")

    with dag:
        sensor = FileSensor(task_id="wait", filepath="out/ready.txt", mode="reschedule",
                            poke_interval=0)
        maker = PythonOperator(task_id="make", python_callable=make_file)
    assert run(sensor).state == State.UP_FOR_RESCHEDULE
    assert run(maker).state == State.SUCCESS
    assert run(sensor).state == State.SUCCESS
