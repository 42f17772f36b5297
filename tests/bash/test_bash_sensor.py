"""BashSensor: succeeds once its command exits 0, times out otherwise, stops its command when killed."""

from __future__ import annotations

from flux.dag import DAG
from flux.sensors import BaseSensorOperator
from flux.state import State
from flux.taskrunner import run_task_instance

from .conftest import DATE, assert_group_gone, log_messages, pgid_from_log, read_log


def run(task):
    result = run_task_instance(task, DATE)
    return result, read_log(result.log_path)


def test_is_a_sensor():
    from flux.operators import BashSensor

    assert issubclass(BashSensor, BaseSensorOperator)


def test_succeeds_when_the_command_exits_zero(tmp_path):
    from flux.operators import BashSensor

    # Counts its pokes in a file; the condition holds from the third poke on.
    with DAG("sensor_dag", start_date=DATE):
        task = BashSensor(
            task_id="third_time",
            bash_command='n=$(( $(cat count 2>/dev/null || echo 0) + 1 )); echo $n > count; '
                         'echo "poke $n on {{ ds }}"; [ "$n" -ge 3 ]',
            cwd=str(tmp_path), poke_interval=0.01, timeout=60)
    result, log = run(task)

    assert result.state == State.SUCCESS, log
    assert (tmp_path / "count").read_text().strip() == "3"
    messages = log_messages(log)
    assert [m for m in messages if m.startswith("poke ")] == [
        "poke 1 on 2024-03-01", "poke 2 on 2024-03-01", "poke 3 on 2024-03-01"]
    assert messages.count("Condition not met: exit code 1") == 2
    assert "Condition met after 3 poke(s)" in messages


def test_times_out_when_the_command_keeps_failing():
    from flux.operators import BashSensor

    with DAG("sensor_dag", start_date=DATE):
        task = BashSensor(task_id="never", bash_command="exit 1", poke_interval=0.01, timeout=0.2)
    result, log = run(task)
    assert result.state == State.FAILED
    assert "SensorTimeout" in log and "timed out" in log


def test_env_is_passed_to_the_command():
    from flux.operators import BashSensor

    with DAG("sensor_dag", start_date=DATE):
        task = BashSensor(task_id="env", bash_command='[ "$WANT" = "{{ ds }}" ]',
                          env={"WANT": "2024-03-01"}, poke_interval=0.01, timeout=5)
    assert run(task)[0].state == State.SUCCESS


def test_a_killed_sensor_leaves_no_process():
    from flux.operators import BashSensor

    with DAG("sensor_dag", start_date=DATE):
        task = BashSensor(task_id="hang", bash_command="echo pgid=$$; bash -c 'sleep 100 & wait'",
                          poke_interval=0.01, execution_timeout=1)
    result, log = run(task)
    assert result.state == State.FAILED
    assert "TaskTimeout" in log
    assert_group_gone(pgid_from_log(log))
