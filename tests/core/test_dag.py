"""The DAG and BaseOperator API: default_args, relationships, cycles, tree view, schedules, dates."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from flux import DAG
from flux.baseoperator import BaseOperator
from flux.dates import UTC
from flux.exceptions import (
    DagCycleError,
    DagDefinitionError,
    DuplicateTaskIdError,
    ScheduleError,
    TaskNotFound,
)


class NoopOperator(BaseOperator):
    def execute(self, context):
        return None


class SqlOperator(BaseOperator):
    """Shaped like the seed's MySqlOperator: ``__init__(self, sql, mysql_dbid, *args, **kwargs)``."""

    template_fields = ("sql",)

    def __init__(self, sql, mysql_dbid, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sql = sql
        self.mysql_dbid = mysql_dbid

    def execute(self, execution_date):
        return self.sql


# --- default_args ----------------------------------------------------------------------------------


def test_default_args_fill_in_missing_arguments_and_unknown_keys_are_ignored() -> None:
    default_args = {
        "owner": "max",
        "retries": 3,
        "retry_delay": timedelta(seconds=10),
        "start_date": datetime(2014, 9, 1),
        "not_an_argument_of_anything": 42,
    }
    with DAG("defaults", default_args=default_args) as dag:
        filled = NoopOperator(task_id="filled")
        overridden = NoopOperator(task_id="overridden", retries=0, owner="alice")
    assert dag.start_date == datetime(2014, 9, 1, tzinfo=UTC)
    assert (filled.owner, filled.retries, filled.retry_delay) == ("max", 3, timedelta(seconds=10))
    assert filled.start_date == datetime(2014, 9, 1, tzinfo=UTC)
    assert (overridden.owner, overridden.retries) == ("alice", 0)
    assert not hasattr(filled, "not_an_argument_of_anything")


def test_seed_style_operator_takes_default_args_as_keywords() -> None:
    default_args = {"owner": "max", "mysql_dbid": "local_mysql"}
    dag = DAG(dag_id="test_dag")
    first = SqlOperator(task_id="mysql_fisrt", sql="TRUNCATE TABLE tmp;", **default_args)
    dag.add_task(first)
    assert (first.owner, first.mysql_dbid, first.dag) == ("max", "local_mysql", dag)


def test_dag_default_args_reach_subclass_arguments() -> None:
    with DAG("sub_defaults", default_args={"mysql_dbid": "from_dag", "owner": "max"}):
        op = SqlOperator(task_id="op", sql="select 1")
        explicit = SqlOperator("select 2", "given", task_id="explicit")
    assert op.mysql_dbid == "from_dag"
    assert explicit.mysql_dbid == "given"  # passed positionally: defaults do not override it


def test_operator_default_args_keyword_too() -> None:
    op = NoopOperator(task_id="t", default_args={"owner": "bob", "unknown": 1})
    assert op.owner == "bob"


def test_unknown_argument_is_a_clear_error() -> None:
    with pytest.raises(DagDefinitionError, match=r"invalid arguments passed to NoopOperator.*retrys"):
        NoopOperator(task_id="t", retrys=3)


def test_invalid_ids_are_refused() -> None:
    with pytest.raises(DagDefinitionError, match="invalid dag_id"):
        DAG("has space")
    with pytest.raises(DagDefinitionError, match="invalid task_id"):
        NoopOperator(task_id="a/b")


# --- the DAG context manager and relationships ---------------------------------------------------


def test_context_manager_adds_tasks_and_nests() -> None:
    with DAG("outer") as outer:
        a = NoopOperator(task_id="a")
        with DAG("inner") as inner:
            b = NoopOperator(task_id="b")
        c = NoopOperator(task_id="c")
    outside = NoopOperator(task_id="outside")
    assert outer.task_ids == ["a", "c"]
    assert inner.task_ids == ["b"]
    assert (a.dag, b.dag, c.dag, outside.dag) == (outer, inner, outer, None)


def test_shift_operators_with_lists() -> None:
    with DAG("shifts") as dag:
        start, a, b, end = (NoopOperator(task_id=t) for t in ("start", "a", "b", "end"))
        result = start >> [a, b]
        [a, b] >> end
    assert result == [a, b]
    assert start.downstream_task_ids == {"a", "b"}
    assert end.upstream_task_ids == {"a", "b"}
    assert dag.roots == [start]
    assert dag.leaves == [end]


def test_left_shift_and_set_upstream() -> None:
    with DAG("lshift") as dag:
        a, b, c, d = (NoopOperator(task_id=t) for t in "abcd")
        c << [a, b]
        [a, b] << d
    assert c.upstream_task_ids == {"a", "b"}
    assert a.upstream_task_ids == {"d"} and b.upstream_task_ids == {"d"}
    assert [t.task_id for t in dag.roots] == ["d"]
    assert [t.task_id for t in dag.leaves] == ["c"]


def test_relationship_pulls_a_task_without_dag_into_the_dag() -> None:
    with DAG("pull") as dag:
        a = NoopOperator(task_id="a")
    loose = NoopOperator(task_id="loose")
    a >> loose
    assert loose.dag is dag and dag.has_task("loose")


def test_cycle_is_refused_with_a_message_naming_the_tasks() -> None:
    with DAG("cyclic"):
        a, b, c = (NoopOperator(task_id=t) for t in "abc")
        a >> b >> c
        with pytest.raises(DagCycleError) as info:
            c >> a
    assert str(info.value) == (
        "cycle in DAG 'cyclic': 'c' >> 'a' closes a loop ('a' already runs before 'c')"
    )
    assert "a" not in c.downstream_task_ids  # nothing was half-added


def test_self_dependency_is_a_cycle() -> None:
    with DAG("selfish"):
        a = NoopOperator(task_id="a")
        with pytest.raises(DagCycleError, match="cannot depend on itself"):
            a >> a


def test_duplicate_task_id() -> None:
    with DAG("dups"):
        NoopOperator(task_id="same")
        with pytest.raises(DuplicateTaskIdError, match="already has a task with task_id 'same'"):
            NoopOperator(task_id="same")


def test_unknown_trigger_rule() -> None:
    with pytest.raises(DagDefinitionError, match="unknown trigger_rule 'all_sucess'"):
        NoopOperator(task_id="t", trigger_rule="all_sucess")


def test_get_task_unknown_is_task_not_found() -> None:
    dag = DAG("lookup")
    with pytest.raises(TaskNotFound, match="task 'nope' not found in DAG 'lookup'"):
        dag.get_task("nope")


# --- tree view -------------------------------------------------------------------------------------


def test_tree_view_of_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    default_args = {"owner": "max", "mysql_dbid": "local_mysql"}
    dag = DAG(dag_id="test_dag")
    mysql_fisrt = SqlOperator(task_id="mysql_fisrt", sql="TRUNCATE TABLE tmp;", **default_args)
    dag.add_task(mysql_fisrt)
    mysql_second = SqlOperator(task_id="mysql_second", sql="INSERT INTO tmp SELECT 1;", **default_args)
    dag.add_task(mysql_second)
    mysql_second.set_upstream(mysql_fisrt)
    dag.tree_view()
    assert capsys.readouterr().out == (
        "<Task(SqlOperator): mysql_second>\n"
        "    <Task(SqlOperator): mysql_fisrt>\n"
    )


def test_tree_lines_of_a_diamond() -> None:
    with DAG("diamond") as dag:
        top, left, right, bottom = (NoopOperator(task_id=t) for t in ("top", "left", "right", "bottom"))
        top >> [left, right] >> bottom
    assert dag.tree_lines() == [
        "<Task(NoopOperator): bottom>",
        "    <Task(NoopOperator): left>",
        "        <Task(NoopOperator): top>",
        "    <Task(NoopOperator): right>",
        "        <Task(NoopOperator): top>",
    ]


def test_topological_sort_puts_upstreams_first() -> None:
    with DAG("topo") as dag:
        a, b, c, d = (NoopOperator(task_id=t) for t in "dcba")  # defined in reverse
        d >> c >> b >> a
    assert [t.task_id for t in dag.topological_sort()] == ["a", "b", "c", "d"]


# --- schedules and dates -------------------------------------------------------------------------


def test_timedelta_schedule_dates_between() -> None:
    dag = DAG("delta", start_date=datetime(2014, 9, 1), schedule_interval=timedelta(hours=12))
    dates = dag.dates_between(datetime(2014, 9, 1), datetime(2014, 9, 2))
    assert dates == [datetime(2014, 9, 1, h, tzinfo=UTC) for h in (0, 12)] + [
        datetime(2014, 9, 2, tzinfo=UTC)
    ]
    assert dag.schedule.describe() == "12 hours"


def test_default_schedule_is_daily() -> None:
    dag = DAG("daily_default", start_date=datetime(2014, 9, 1))
    assert dag.dates_between(None, datetime(2014, 9, 3)) == [
        datetime(2014, 9, d, tzinfo=UTC) for d in (1, 2, 3)
    ]


def test_cron_schedule_aligns_onto_the_expression() -> None:
    dag = DAG("cron", start_date=datetime(2024, 1, 1, 1, 30), schedule_interval="0 */6 * * *")
    assert dag.dates_between(None, datetime(2024, 1, 2)) == [
        datetime(2024, 1, 1, h, tzinfo=UTC) for h in (6, 12, 18)
    ] + [datetime(2024, 1, 2, tzinfo=UTC)]
    assert dag.following_date(datetime(2024, 1, 1, 6, tzinfo=UTC)) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert dag.previous_date(datetime(2024, 1, 1, 6, tzinfo=UTC)) == datetime(2024, 1, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("preset", "start", "end", "expected"),
    [
        ("@daily", datetime(2024, 1, 1, 5), datetime(2024, 1, 3),
         [datetime(2024, 1, 2), datetime(2024, 1, 3)]),
        ("@hourly", datetime(2024, 1, 1), datetime(2024, 1, 1, 2),
         [datetime(2024, 1, 1, h) for h in range(3)]),
        ("@weekly", datetime(2024, 1, 1), datetime(2024, 1, 15),
         [datetime(2024, 1, 7), datetime(2024, 1, 14)]),
        ("@monthly", datetime(2024, 1, 1), datetime(2024, 3, 1), [datetime(2024, m, 1) for m in (1, 2, 3)]),
        ("@yearly", datetime(2023, 6, 1), datetime(2025, 1, 1), [datetime(2024, 1, 1), datetime(2025, 1, 1)]),
    ],
)
def test_presets(preset: str, start: datetime, end: datetime, expected: list[datetime]) -> None:
    dag = DAG("preset", start_date=start, schedule_interval=preset)
    assert dag.dates_between(None, end) == [d.replace(tzinfo=UTC) for d in expected]
    assert dag.schedule.describe() == preset


def test_once_schedule_has_one_date() -> None:
    dag = DAG("once", start_date=datetime(2024, 1, 1), schedule_interval="@once")
    assert dag.dates_between(None, datetime(2025, 1, 1)) == [datetime(2024, 1, 1, tzinfo=UTC)]
    assert dag.following_date(datetime(2024, 1, 1, tzinfo=UTC)) is None


def test_none_schedule_is_manual_only() -> None:
    dag = DAG("manual", start_date=datetime(2024, 1, 1), schedule_interval=None)
    assert dag.schedule.automatic is False
    assert dag.schedule.describe() == "None"
    assert dag.dates_between(datetime(2024, 3, 1), datetime(2024, 4, 1)) == [
        datetime(2024, 3, 1, tzinfo=UTC)
    ]


@pytest.mark.parametrize("bad", ["0 0 * *", "every day", "@fortnightly", "61 * * * *"])
def test_bad_cron_is_a_schedule_error(bad: str) -> None:
    with pytest.raises(ScheduleError, match="invalid schedule_interval"):
        DAG("bad_cron", schedule_interval=bad)


def test_non_positive_timedelta_and_wrong_type_are_schedule_errors() -> None:
    with pytest.raises(ScheduleError, match="positive duration"):
        DAG("zero", schedule_interval=timedelta(0))
    with pytest.raises(ScheduleError, match="expected a timedelta"):
        DAG("number", schedule_interval=3600)


def test_dates_between_errors() -> None:
    dag = DAG("nostart")
    with pytest.raises(DagDefinitionError, match="has no start_date"):
        dag.dates_between(None, datetime(2024, 1, 1))
    dated = DAG("backwards", start_date=datetime(2024, 1, 1))
    with pytest.raises(DagDefinitionError, match="is after end date"):
        dated.dates_between(datetime(2024, 2, 1), datetime(2024, 1, 1))


def test_task_dates_are_bounded_by_the_dag() -> None:
    with DAG("bounds", start_date=datetime(2024, 1, 10), end_date=datetime(2024, 1, 20)):
        early = NoopOperator(task_id="early", start_date=datetime(2024, 1, 1))
        late = NoopOperator(task_id="late", start_date=datetime(2024, 1, 15), end_date=datetime(2024, 2, 1))
    assert early.start_date == datetime(2024, 1, 10, tzinfo=UTC)
    assert (late.start_date, late.end_date) == (datetime(2024, 1, 15, tzinfo=UTC),
                                                datetime(2024, 1, 20, tzinfo=UTC))


def test_retry_delay_exponential_backoff_and_cap() -> None:
    op = NoopOperator(task_id="r", retry_delay=10, retry_exponential_backoff=True,
                      max_retry_delay=timedelta(seconds=50))
    assert [op.retry_delay_for(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 50, 50]
    plain = NoopOperator(task_id="p", retry_delay=timedelta(seconds=7))
    assert plain.retry_delay_for(4) == timedelta(seconds=7)
