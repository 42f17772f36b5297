"""The template context of a task instance: what ``{{ ... }}`` can use and ``execute`` receives."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flux.baseoperator import BaseOperator
    from flux.models import TaskInstance


def build_context(ti: TaskInstance, task: BaseOperator, dag_run_conf: dict[str, Any] | None = None,
                  run_id: str | None = None) -> dict[str, Any]:
    """Everything a template may use for ``ti`` (see DESIGN.md section 6)."""
    from flux.config import get_config
    from flux.macros import build_namespace

    dag = task.dag
    execution_date: datetime = ti.execution_date
    prev = dag.previous_date(execution_date) if dag is not None else None
    following = dag.following_date(execution_date) if dag is not None else None
    params: dict[str, Any] = {}
    if dag is not None:
        params.update(dag.params)
    params.update(task.params)
    ds = execution_date.strftime("%Y-%m-%d")
    return {
        "task_instance": ti,
        "ti": ti,
        "task": task,
        "dag": dag,
        "execution_date": execution_date,
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "ts": execution_date.isoformat(),
        "ts_nodash": execution_date.strftime("%Y%m%dT%H%M%S"),
        "prev_execution_date": prev,
        "next_execution_date": following,
        "prev_ds": prev.strftime("%Y-%m-%d") if prev else None,
        "next_ds": following.strftime("%Y-%m-%d") if following else None,
        "macros": build_namespace(),
        "params": params,
        "conf": get_config(),
        "dag_run_conf": dag_run_conf or {},
        "run_id": run_id,
        "try_number": ti.try_number,
    }
