"""Guarded state changes through a Core transaction (``flux.db.transaction``): the row changes only
when it is as the caller saw it, and listeners hear of committed changes only."""

from __future__ import annotations

import types
from datetime import datetime

import pytest
from sqlalchemy import insert, select

from flux.dates import UTC
from flux.db import transaction
from flux.hookspecs import hookimpl
from flux.models import TaskInstance
from flux.plugins import PluginInfo, get_plugin_manager
from flux.state import State
from flux.transitions import PENDING_KEY, transition

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture()
def heard() -> list[tuple[str, str | None, str | None]]:
    """The (task_id, previous, state) changes announced to a listener while the test runs."""
    changes: list[tuple[str, str | None, str | None]] = []

    @hookimpl
    def flux_task_instance_state_changed(ti, previous, state):
        changes.append((ti.task_id, previous, state))

    manager = get_plugin_manager()
    manager.register(types.SimpleNamespace(flux_task_instance_state_changed=flux_task_instance_state_changed),
                     PluginInfo("listener", "tests.listener", "tests-listener", "1.0"))
    yield changes
    manager.unregister("listener")


def _instance(task_id: str, state: str | None = None) -> TaskInstance:
    with transaction() as conn:
        conn.execute(insert(TaskInstance.__table__).values(
            dag_id="d", task_id=task_id, execution_date=WHEN, state=state, try_number=0,
            max_tries=0))
    return TaskInstance(dag_id="d", task_id=task_id, execution_date=WHEN, state=state, try_number=0)


def _stored_state(task_id: str) -> str | None:
    table = TaskInstance.__table__
    with transaction() as conn:
        return conn.execute(select(table.c.state).where(table.c.task_id == task_id)).scalar_one()


def test_a_committed_change_is_stored_and_announced(heard) -> None:
    ti = _instance("a")
    with transaction() as conn:
        assert transition(conn, ti, State.QUEUED, expect_state=None, expect_try=0)
        assert heard == []  # not before the commit
    assert _stored_state("a") == State.QUEUED
    assert ti.state == State.QUEUED
    assert heard == [("a", None, State.QUEUED)]


def test_a_stale_expectation_changes_nothing(heard) -> None:
    ti = _instance("b", State.RUNNING)
    with transaction() as conn:
        assert not transition(conn, ti, State.QUEUED, expect_state=None, expect_try=0)
        assert not transition(conn, ti, State.SUCCESS, expect_state=State.RUNNING, expect_try=1)
    assert _stored_state("b") == State.RUNNING
    assert heard == []


def test_a_rolled_back_change_is_never_announced(heard) -> None:
    ti = _instance("c")
    with pytest.raises(RuntimeError), transaction() as conn:
        assert transition(conn, ti, State.QUEUED, expect_state=None, expect_try=0)
        raise RuntimeError("the caller gave up")
    assert _stored_state("c") is None
    # The next transaction (the same pooled connection, on SQLite) announces only its own change.
    other = _instance("d")
    with transaction() as conn:
        assert PENDING_KEY not in conn.info
        assert transition(conn, other, State.QUEUED, expect_state=None, expect_try=0)
    assert heard == [("d", None, State.QUEUED)]
