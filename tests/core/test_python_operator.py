"""PythonOperator, EmptyOperator and DummyOperator, run for real."""

from __future__ import annotations

from datetime import datetime

import pytest

from flux import DAG
from flux.dates import UTC
from flux.exceptions import DagDefinitionError
from flux.state import State
from flux.taskrunner import RunOptions, run_task_instance

DAY1 = datetime(2014, 9, 1, tzinfo=UTC)


def run(task):
    return run_task_instance(task, DAY1, RunOptions())


def test_operators_come_from_cores_plugin() -> None:
    from flux.builtin import operators as builtin
    from flux.operators import DummyOperator, EmptyOperator, FileSensor, PythonOperator
    from flux.plugins import get_plugin_manager

    assert (PythonOperator, EmptyOperator, DummyOperator, FileSensor) == (
        builtin.PythonOperator, builtin.EmptyOperator, builtin.DummyOperator, builtin.FileSensor)
    core = next(row for row in get_plugin_manager().describe() if row["name"] == "core")
    assert {"PythonOperator", "EmptyOperator", "DummyOperator", "FileSensor"} <= set(core["operators"])
    assert "BaseSensorOperator" not in core["operators"]


def test_op_args_op_kwargs_and_return_value_as_xcom() -> None:
    from flux.operators import PythonOperator

    def add(a, b, scale=1):
        return (a + b) * scale

    with DAG("py", start_date=DAY1):
        task = PythonOperator(task_id="add", python_callable=add, op_args=[1, 2], op_kwargs={"scale": 10})
        check = PythonOperator(task_id="check", python_callable=lambda ti: ti.xcom_pull(task_ids="add"))
        task >> check
    result = run(task)
    assert (result.state, result.return_value) == (State.SUCCESS, 30)
    assert run(check).return_value == 30


def test_context_keys_are_passed_by_parameter_name() -> None:
    from flux.operators import PythonOperator

    def named(ds, ti, params, table):
        return [ds, ti.task_id, params["x"], table]

    with DAG("py_named", start_date=DAY1, params={"x": 7}):
        task = PythonOperator(task_id="named", python_callable=named, op_kwargs={"table": "t"})
    assert run(task).return_value == ["2014-09-01", "named", 7, "t"]


def test_kwargs_receives_the_whole_context_and_op_kwargs_win() -> None:
    from flux.operators import PythonOperator

    def everything(**kwargs):
        present = sorted(k for k in ("ds", "ti", "dag", "execution_date", "macros") if k in kwargs)
        return [*present, kwargs["ds_nodash"]]

    with DAG("py_kwargs", start_date=DAY1):
        task = PythonOperator(task_id="all", python_callable=everything,
                              op_kwargs={"ds_nodash": "overridden"})
    assert run(task).return_value == ["dag", "ds", "execution_date", "macros", "ti", "overridden"]


def test_a_parameter_filled_by_op_args_is_not_taken_from_the_context() -> None:
    from flux.operators import PythonOperator

    with DAG("py_positional", start_date=DAY1):
        task = PythonOperator(task_id="pos", python_callable=lambda ds, ti: [ds, ti.task_id],
                              op_args=["mine"])
    assert run(task).return_value == ["mine", "pos"]


def test_templated_fields() -> None:
    from flux.operators import PythonOperator

    def show(first, label, templates_dict):
        return [first, label, templates_dict["query"]]

    with DAG("py_templates", start_date=DAY1, params={"table": "sales"}):
        task = PythonOperator(
            task_id="show", python_callable=show,
            op_args=["{{ ds }}"], op_kwargs={"label": "{{ params.table }}"},
            templates_dict={"query": "SELECT * FROM {{ params.table }} WHERE ds = '{{ ds_nodash }}'"},
        )
    assert run(task).return_value == ["2014-09-01", "sales", "SELECT * FROM sales WHERE ds = '20140901'"]


def test_an_exception_in_the_callable_fails_the_task() -> None:
    from flux.operators import PythonOperator

    def broken():
        raise KeyError("missing")

    with DAG("py_fail", start_date=DAY1):
        task = PythonOperator(task_id="broken", python_callable=broken)
    result = run(task)
    assert result.state == State.FAILED and "KeyError" in result.message


def test_not_callable_is_a_definition_error() -> None:
    from flux.operators import PythonOperator

    with pytest.raises(DagDefinitionError, match="python_callable must be callable"):
        PythonOperator(task_id="bad", python_callable="print")


def test_builtin_callable_without_a_signature() -> None:
    from flux.operators import PythonOperator

    with DAG("py_builtin", start_date=DAY1):
        task = PythonOperator(task_id="maxed", python_callable=max, op_args=[3, 9, 4])
    assert run(task).return_value == 9


def test_empty_and_dummy_operators_succeed_without_a_value() -> None:
    from flux.operators import DummyOperator, EmptyOperator

    with DAG("empties", start_date=DAY1):
        empty = EmptyOperator(task_id="empty")
        dummy = DummyOperator(task_id="dummy")
        empty >> dummy
    assert issubclass(DummyOperator, EmptyOperator)
    first, second = run(empty), run(dummy)
    assert (first.state, first.return_value, second.state) == (State.SUCCESS, None, State.SUCCESS)
