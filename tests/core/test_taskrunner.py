"""Running task instances for real (metadata DB, log files): states, retries, trigger rules,
depends_on_past, timeouts, templating, XCom, callbacks, listeners, logs."""

from __future__ import annotations

import logging
import re
import time
import types
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flux import DAG
from flux.baseoperator import BaseOperator
from flux.dates import UTC
from flux.db import session_scope
from flux.exceptions import TaskSkipped
from flux.hookspecs import hookimpl
from flux.models import TaskInstance
from flux.plugins import PluginInfo, get_plugin_manager
from flux.state import State, TriggerRule
from flux.taskrunner import RunOptions, run_task_instance

DAY1 = datetime(2014, 9, 1, tzinfo=UTC)
LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] \{[\w.]+\.py:\d+\} "
                      r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) - ")


class CallOperator(BaseOperator):
    """Runs ``func(context)``; what it returns is the task's return value."""

    def __init__(self, func=None, **kwargs):
        super().__init__(**kwargs)
        self.func = func

    def execute(self, context):
        return self.func(context) if self.func else None


class EchoOperator(BaseOperator):
    template_fields = ("text",)

    def __init__(self, text, **kwargs):
        super().__init__(**kwargs)
        self.text = text

    def execute(self, context):
        self.log.info("text is %s", self.text)
        return self.text


class SqlFileOperator(BaseOperator):
    template_fields = ("sql",)
    template_ext = (".sql",)

    def __init__(self, sql, **kwargs):
        super().__init__(**kwargs)
        self.sql = sql

    def execute(self, context):
        return self.sql


class SeedStyleOperator(BaseOperator):
    """The seed's ``execute(self, execution_date)`` signature."""

    def execute(self, execution_date):
        print(f"running for {execution_date:%Y-%m-%d}")
        return execution_date.isoformat()


def fail(context: dict[str, Any]) -> None:
    raise ValueError("boom")


def skip(context: dict[str, Any]) -> None:
    raise TaskSkipped("nothing to do today")


def state_of(task: BaseOperator, when: datetime = DAY1) -> TaskInstance | None:
    with session_scope() as session:
        return session.get(TaskInstance, (task.dag.dag_id, task.task_id, when))


def run(task: BaseOperator, when: datetime = DAY1, **options: Any):
    return run_task_instance(task, when, RunOptions(**options))


# --- states ----------------------------------------------------------------------------------------


def test_success_failure_and_skip_states() -> None:
    with DAG("states", start_date=DAY1):
        ok = CallOperator(task_id="ok", func=lambda c: 42)
        bad = CallOperator(task_id="bad", func=fail)
        skipped = CallOperator(task_id="skipped", func=skip)
    ok_result, bad_result, skip_result = run(ok), run(bad), run(skipped)
    assert (ok_result.state, ok_result.ran, ok_result.return_value) == (State.SUCCESS, True, 42)
    assert bad_result.state == State.FAILED and "ValueError: boom" in bad_result.message
    assert skip_result.state == State.SKIPPED
    stored = state_of(ok)
    assert (stored.state, stored.try_number, stored.hostname is not None) == (State.SUCCESS, 1, True)
    assert stored.duration is not None and stored.end_date >= stored.start_date
    assert state_of(bad).state == State.FAILED
    assert "nothing to do today" in state_of(skipped).note


def test_retries_use_exponential_backoff_capped_by_max_retry_delay() -> None:
    with DAG("retrying", start_date=DAY1):
        task = CallOperator(task_id="flaky", func=fail, retries=3, retry_delay=timedelta(seconds=10),
                            retry_exponential_backoff=True, max_retry_delay=timedelta(seconds=30))
    delays = []
    for _ in range(3):
        result = run(task, ignore_dependencies=True)  # do not wait for next_try_at in a test
        assert result.state == State.UP_FOR_RETRY
        ti = state_of(task)
        delays.append((ti.next_try_at - ti.end_date).total_seconds())
    assert delays == [10, 20, 30]
    final = run(task, ignore_dependencies=True)
    assert (final.state, final.try_number) == (State.FAILED, 4)


def test_up_for_retry_waits_for_its_retry_delay() -> None:
    with DAG("waiting", start_date=DAY1):
        task = CallOperator(task_id="flaky", func=fail, retries=1, retry_delay=timedelta(hours=1))
    assert run(task).state == State.UP_FOR_RETRY
    again = run(task)
    assert (again.ran, again.state) == (False, State.UP_FOR_RETRY)
    assert "waiting until" in again.message


# --- trigger rules and depends_on_past -------------------------------------------------------------


def build_rules_dag() -> dict[str, BaseOperator]:
    with DAG("rules", start_date=DAY1):
        good = CallOperator(task_id="good", func=lambda c: None)
        bad = CallOperator(task_id="bad", func=fail)
        skipper = CallOperator(task_id="skipper", func=skip)
        tasks = {
            "all_success": CallOperator(task_id="all_success"),
            "one_failed": CallOperator(task_id="one_failed", trigger_rule=TriggerRule.ONE_FAILED),
            "all_done": CallOperator(task_id="all_done", trigger_rule=TriggerRule.ALL_DONE),
            "one_success": CallOperator(task_id="one_success", trigger_rule=TriggerRule.ONE_SUCCESS),
            "all_failed": CallOperator(task_id="all_failed", trigger_rule=TriggerRule.ALL_FAILED),
            "none_failed": CallOperator(task_id="none_failed", trigger_rule=TriggerRule.NONE_FAILED),
            "after_skip": CallOperator(task_id="after_skip"),
        }
        [good, bad] >> tasks["all_success"]
        [good, bad] >> tasks["one_failed"]
        [good, bad] >> tasks["all_done"]
        [good, bad] >> tasks["one_success"]
        [good, bad] >> tasks["all_failed"]
        [good, bad] >> tasks["none_failed"]
        skipper >> tasks["after_skip"]
    for upstream in (good, bad, skipper):
        run(upstream)
    return tasks


def test_trigger_rules_through_real_runs() -> None:
    tasks = build_rules_dag()
    outcomes = {name: run(task).state for name, task in tasks.items()}
    assert outcomes == {
        "all_success": State.UPSTREAM_FAILED,
        "one_failed": State.SUCCESS,
        "all_done": State.SUCCESS,
        "one_success": State.SUCCESS,
        "all_failed": State.SKIPPED,
        "none_failed": State.UPSTREAM_FAILED,
        "after_skip": State.SKIPPED,
    }
    assert state_of(tasks["all_success"]).state == State.UPSTREAM_FAILED


def test_downstream_waits_while_upstream_has_not_run() -> None:
    with DAG("wait_upstream", start_date=DAY1):
        first = CallOperator(task_id="first")
        second = CallOperator(task_id="second")
        first >> second
    result = run(second)
    assert (result.ran, result.state) == (False, None)
    assert "waiting for first" in result.message
    run(first)
    assert run(second).state == State.SUCCESS


def test_depends_on_past() -> None:
    day2 = DAY1 + timedelta(days=1)
    broken = {"first day": True}
    with DAG("past", start_date=DAY1):
        def maybe_fail(context):
            if broken["first day"] and context["ds"] == "2014-09-01":
                raise ValueError("first day fails")

        task = CallOperator(task_id="t", func=maybe_fail, depends_on_past=True)
    assert run(task, DAY1).state == State.FAILED
    blocked = run(task, day2)
    assert (blocked.ran, blocked.state) == (False, None)
    assert "depends_on_past" in blocked.message
    # The first date of the task has no past to depend on; once it succeeds, day 2 may run.
    broken["first day"] = False
    assert run(task, DAY1, force=True).state == State.SUCCESS
    assert run(task, day2).state == State.SUCCESS


# --- timeouts, templates, XCom ---------------------------------------------------------------------


def test_execution_timeout_fails_a_sleeping_task() -> None:
    with DAG("slow", start_date=DAY1):
        task = CallOperator(task_id="sleeper", func=lambda c: time.sleep(30),
                            execution_timeout=timedelta(seconds=1))
    result = run(task)
    assert result.state == State.FAILED
    assert "TaskTimeout" in result.message
    assert "execution_timeout" in Path(result.log_path).read_text()


def test_undefined_template_variable_fails_and_names_it_in_the_log() -> None:
    with DAG("strict", start_date=DAY1):
        task = EchoOperator(task_id="echo", text="value: {{ params.missing_thing }}")
    result = run(task)
    assert result.state == State.FAILED
    log = Path(result.log_path).read_text()
    assert "TemplateError" in log and "missing_thing" in log


def test_templates_see_params_macros_and_dates() -> None:
    with DAG("rendered", start_date=DAY1, params={"table": "dag_level", "other": "kept"}):
        task = EchoOperator(
            task_id="echo", params={"table": "task_level"},
            text="{{ params.table }} {{ params.other }} {{ ds }} {{ ds_nodash }} "
                 "{{ macros.ds_add(ds, 1) }} {{ prev_ds }} {{ task.task_id }} {{ dag.dag_id }}",
        )
    result = run(task)
    assert result.return_value == (
        "task_level kept 2014-09-01 20140901 2014-09-02 2014-08-31 echo rendered"
    )
    assert task.text.startswith("{{")  # rendering happened on a copy, not on the DAG's task


def test_template_file_next_to_the_dag_file(tmp_path: Path) -> None:
    dag_file = tmp_path / "my_dag.py"
    dag_file.write_text("# stands for the DAG file\n")
    (tmp_path / "query.sql").write_text("SELECT * FROM t WHERE ds = '{{ ds }}'\n")
    dag = DAG("with_files", start_date=DAY1)
    dag.fileloc = str(dag_file)
    task = SqlFileOperator(task_id="q", sql="query.sql", dag=dag)
    result = run(task)
    assert result.state == State.SUCCESS
    assert result.return_value == "SELECT * FROM t WHERE ds = '2014-09-01'\n"


def test_missing_template_file_fails_clearly(tmp_path: Path) -> None:
    dag_file = tmp_path / "my_dag.py"
    dag_file.write_text("\n")
    dag = DAG("missing_file", start_date=DAY1)
    dag.fileloc = str(dag_file)
    task = SqlFileOperator(task_id="q", sql="nope.sql", dag=dag)
    result = run(task)
    assert result.state == State.FAILED
    assert "template file 'nope.sql' not found" in result.message


def test_xcom_push_and_pull_between_tasks() -> None:
    with DAG("xcoms", start_date=DAY1):
        def produce(context):
            context["ti"].xcom_push("extra", [1, 2])
            return {"rows": 3}

        producer = CallOperator(task_id="producer", func=produce)
        consumer = CallOperator(
            task_id="consumer",
            func=lambda c: [c["ti"].xcom_pull(task_ids="producer"),
                            c["ti"].xcom_pull(task_ids="producer", key="extra"),
                            c["ti"].xcom_pull(task_ids=["producer", "nobody"])],
        )
        templated = EchoOperator(task_id="templated",
                                 text="{{ ti.xcom_pull(task_ids='producer')['rows'] }} rows")
        producer >> [consumer, templated]
    run(producer)
    assert run(consumer).return_value == [{"rows": 3}, [1, 2], [{"rows": 3}, None]]
    assert run(templated).return_value == "3 rows"


def test_xcom_size_limit_fails_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    from flux import config

    monkeypatch.setenv("FLUX__CORE__MAX_XCOM_SIZE", "100")
    config.reset_config()
    with DAG("big_xcom", start_date=DAY1):
        task = CallOperator(task_id="big", func=lambda c: "x" * 1000)
    result = run(task)
    assert result.state == State.FAILED
    assert "XComError" in result.message and "more than the limit of 100" in result.message


def test_non_json_return_value_fails_the_task() -> None:
    with DAG("not_json", start_date=DAY1):
        task = CallOperator(task_id="obj", func=lambda c: object())
    result = run(task)
    assert result.state == State.FAILED
    assert "JSON-serializable" in result.message


# --- callbacks and listeners -------------------------------------------------------------------------


def test_callbacks_are_called_once_each() -> None:
    calls: list[tuple[str, str, int]] = []

    def record(kind):
        return lambda context: calls.append((kind, context["ti"].task_id, context["ti"].try_number))

    callbacks = {"on_success_callback": record("success"), "on_failure_callback": record("failure"),
                 "on_retry_callback": record("retry")}
    with DAG("callbacks", start_date=DAY1):
        ok = CallOperator(task_id="ok", **callbacks)
        bad = CallOperator(task_id="bad", func=fail, retries=1, retry_delay=0, **callbacks)
    run(ok)
    run(bad)
    run(bad)
    assert calls == [("success", "ok", 1), ("retry", "bad", 1), ("failure", "bad", 2)]


def test_failure_callback_sees_the_exception() -> None:
    seen: list[BaseException] = []
    with DAG("callback_exc", start_date=DAY1):
        task = CallOperator(task_id="bad", func=fail,
                            on_failure_callback=lambda c: seen.append(c["exception"]))
    run(task)
    assert len(seen) == 1 and isinstance(seen[0], ValueError)


def test_a_failing_callback_does_not_change_the_state() -> None:
    def broken(context):
        raise RuntimeError("callback broke")

    with DAG("bad_callback", start_date=DAY1):
        task = CallOperator(task_id="ok", on_success_callback=broken)
    result = run(task)
    assert result.state == State.SUCCESS
    assert "callback broke" in Path(result.log_path).read_text()


def test_listener_hook_sees_every_state_change() -> None:
    changes: list[tuple[str, str | None, str]] = []

    @hookimpl
    def flux_task_instance_state_changed(ti, previous, state):
        changes.append((ti.task_id, previous, state))

    manager = get_plugin_manager()
    plugin = types.SimpleNamespace(flux_task_instance_state_changed=flux_task_instance_state_changed)
    manager.register(plugin, PluginInfo("listener", "tests.listener", "tests-listener", "1.0"))
    try:
        with DAG("listened", start_date=DAY1):
            ok = CallOperator(task_id="ok")
            flaky = CallOperator(task_id="flaky", func=fail, retries=1, retry_delay=0)
            after = CallOperator(task_id="after")
            flaky >> after
        run(ok)
        run(flaky)
        run(flaky)
        run(after)
    finally:
        manager.unregister("listener")
    assert changes == [
        ("ok", None, State.RUNNING), ("ok", State.RUNNING, State.SUCCESS),
        ("flaky", None, State.RUNNING), ("flaky", State.RUNNING, State.UP_FOR_RETRY),
        ("flaky", State.UP_FOR_RETRY, State.RUNNING), ("flaky", State.RUNNING, State.FAILED),
        ("after", None, State.UPSTREAM_FAILED),
    ]


# --- the seed's ways ---------------------------------------------------------------------------------


def test_seed_execute_with_execution_date() -> None:
    with DAG("seed_style", start_date=DAY1):
        task = SeedStyleOperator(task_id="old")
    result = run(task)
    assert result.state == State.SUCCESS
    assert result.return_value == "2014-09-01T00:00:00+00:00"
    assert "running for 2014-09-01" in Path(result.log_path).read_text()


def test_op_run_over_three_dates_then_rerun_says_already_succeeded(
        caplog: pytest.LogCaptureFixture) -> None:
    task = SeedStyleOperator(task_id="test_task3", owner="max")
    states = task.run(start_date=datetime(2014, 9, 15), end_date=datetime(2014, 9, 17))
    assert list(states.values()) == [State.SUCCESS] * 3
    assert [d.day for d in states] == [15, 16, 17]
    assert task.dag.dag_id == "adhoc_max"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="flux"):
        again = task.run(start_date=datetime(2014, 9, 15), end_date=datetime(2014, 9, 17))
    assert list(again.values()) == [State.SUCCESS] * 3
    already = [r.getMessage() for r in caplog.records if "already succeeded" in r.getMessage()]
    assert len(already) == 3
    assert "<Task(SeedStyleOperator): test_task3> for 2014-09-15 00:00:00 already succeeded" in already[0]
    with session_scope() as session:
        tries = [ti.try_number for ti in session.query(TaskInstance).filter_by(task_id="test_task3")]
    assert tries == [1, 1, 1]


def test_force_runs_a_succeeded_instance_again() -> None:
    with DAG("forced", start_date=DAY1):
        task = CallOperator(task_id="t")
    run(task)
    assert run(task).ran is False
    again = run(task, force=True)
    assert (again.ran, again.state, again.try_number) == (True, State.SUCCESS, 2)


def test_mark_success_does_not_run() -> None:
    with DAG("marked", start_date=DAY1):
        task = CallOperator(task_id="t", func=fail)
    result = run(task, mark_success=True)
    assert (result.ran, result.state) == (False, State.SUCCESS)
    assert state_of(task).state == State.SUCCESS


# --- logs ------------------------------------------------------------------------------------------


def test_log_path_layout_and_format(flux_env: Path) -> None:
    with DAG("example_2", start_date=DAY1):
        task = SeedStyleOperator(task_id="runme_1")
    result = run(task)
    expected = flux_env / "logs" / "example_2" / "runme_1" / "2014-09-01T00:00:00" / "1.log"
    assert Path(result.log_path) == expected
    text = expected.read_text()
    record_lines = [line for line in text.splitlines() if line.startswith("[")]
    assert record_lines and all(LOG_LINE.match(line) for line in record_lines)
    assert "New run starting @" in text
    assert "Executing <Task(SeedStyleOperator): runme_1> for 2014-09-01 00:00:00" in text
    assert re.search(r"\{test_taskrunner\.py:\d+\} INFO - running for 2014-09-01", text)
    run(task, force=True)
    assert (expected.parent / "2.log").exists()  # each try has its own file


def test_announce_is_told_the_log_path() -> None:
    seen: list[str] = []
    with DAG("announced", start_date=DAY1):
        task = CallOperator(task_id="t")
    result = run(task, announce=seen.append)
    assert seen == [result.log_path]


def test_test_mode_records_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with DAG("tested", start_date=DAY1):
        task = EchoOperator(task_id="echo", text="{{ ds }}")
    result = run(task, test_mode=True)
    assert (result.state, result.return_value) == (State.SUCCESS, "2014-09-01")
    assert state_of(task) is None
