"""A task instance's page (attributes, rendered templates, the log of each try) and its actions."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for

from flux.db import session_scope
from flux.exceptions import TaskNotFound
from flux.state import State
from flux_web import actions, queries
from flux_web.logs import read_log
from flux_web.security import admin_only
from flux_web.templating import ti_url, url_date
from flux_web.views.common import bool_arg, find_dag, int_arg, is_admin, parse_date_value, user_name

bp = Blueprint("task_instances", __name__)

#: task attributes shown on the page (when the task is still in the DAG)
TASK_ATTRIBUTES = ("owner", "retries", "retry_delay", "trigger_rule", "depends_on_past", "pool",
                   "queue", "priority_weight", "execution_timeout", "email")
#: stored task instance attributes shown on the page
TI_ATTRIBUTES = ("state", "try_number", "max_tries", "start_date", "end_date", "duration",
                 "hostname", "pid", "operator", "pool", "pool_slots", "queue", "priority_weight",
                 "queued_at", "heartbeat", "next_try_at", "job_id", "note")


def _rendered(raw: str | None) -> list[tuple[str, str]]:
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return [("(unreadable)", raw)]
    if not isinstance(value, dict):
        return [("(value)", json.dumps(value, indent=2))]
    return [(str(k), v if isinstance(v, str) else json.dumps(v, indent=2, default=str))
            for k, v in value.items()]


def _load(dag_id: str, task_id: str, execution_date: str) -> tuple[Any, Any, Any, Any]:
    when = parse_date_value(execution_date)
    summary, dag = find_dag(dag_id)
    with session_scope() as session:
        ti = queries.get_task_instance(session, dag_id, task_id, when)
        run = queries.get_dag_run(session, dag_id, when)
    task = dag.task_dict.get(task_id)
    if task is None and ti is None:
        raise TaskNotFound(f"task {task_id!r} not found in DAG {dag_id!r}")
    return summary, dag, ti, (task, run, when)


@bp.get("/dags/<dag_id>/tasks/<task_id>/<execution_date>")
def detail(dag_id: str, task_id: str, execution_date: str) -> Any:
    """Attributes, rendered template fields, and the log of each try (refreshed while running)."""
    summary, dag, ti, (task, run, when) = _load(dag_id, task_id, execution_date)
    tries = list(range(1, (ti.try_number if ti else 0) + 1))
    chosen = int_arg(request.args, "try", tries[-1] if tries else 1, 1, max(1, len(tries)))
    log = read_log(dag_id, task_id, when, chosen, ti=ti) if tries else None
    attributes = [(name, getattr(ti, name)) for name in TI_ATTRIBUTES] if ti else []
    task_attributes = [(name, getattr(task, name, None)) for name in TASK_ATTRIBUTES] if task else []
    running = ti is not None and ti.state in (State.RUNNING, State.QUEUED, State.UP_FOR_RETRY,
                                              State.UP_FOR_RESCHEDULE, State.SCHEDULED)
    return render_template(
        "task_instance.html", dag=dag, summary=summary, ti=ti, task=task, task_id=task_id,
        run=run, when=when, tries=tries, chosen_try=chosen, log=log, attributes=attributes,
        task_attributes=task_attributes, rendered=_rendered(ti.rendered_fields if ti else None),
        running=running, can_act=is_admin(), tab=None,
        log_url=url_for("task_instances.log", dag_id=dag_id, task_id=task_id,
                        execution_date=url_date(when), try_number=chosen),
    )


@bp.get("/dags/<dag_id>/tasks/<task_id>/<execution_date>/log/<int:try_number>")
def log(dag_id: str, task_id: str, execution_date: str, try_number: int) -> Any:
    """One try's log as JSON, from byte ``offset`` on (the page polls this while the task runs)."""
    when = parse_date_value(execution_date)
    offset = request.args.get("offset")
    start = int_arg(request.args, "offset", 0, 0, 2**62) if offset is not None else None
    with session_scope() as session:
        ti = queries.get_task_instance(session, dag_id, task_id, when)
    if ti is None:
        abort(404, description=f"no task instance {task_id} of DAG {dag_id} on {url_date(when)}")
    if not 1 <= try_number <= max(ti.try_number, 1):
        abort(404, description=f"{task_id} on {url_date(when)} has no try {try_number} "
                               f"(tries so far: {ti.try_number})")
    chunk = read_log(dag_id, task_id, when, try_number, start, ti=ti)
    return jsonify(content=chunk.text, offset=chunk.offset, next_offset=chunk.next_offset,
                   exists=chunk.exists, truncated_start=chunk.truncated_start, state=ti.state,
                   try_number=ti.try_number,
                   finished=ti.state in State.FINISHED or try_number < ti.try_number)


def _clear_request(dag: Any, values: Any) -> dict[str, Any]:
    task_id = values.get("task_id") or ""
    dag.get_task(task_id)  # 404 for an unknown task
    when = parse_date_value(values.get("execution_date") or "")
    flags = {name: bool_arg(values, name) for name in ("upstream", "downstream", "past", "future",
                                                      "only_failed")}
    start, end = actions.clear_range(when, flags["past"], flags["future"])
    return {"task_id": task_id, "when": when, "start": start, "end": end, **flags}


@bp.get("/dags/<dag_id>/clear")
@admin_only
def clear_confirm(dag_id: str) -> Any:
    """The confirmation page: exactly the task instances the clear will reset."""
    summary, dag = find_dag(dag_id)
    spec = _clear_request(dag, request.args)
    found = actions.clear(dag, [spec["task_id"]], spec["start"], spec["end"],
                          upstream=spec["upstream"], downstream=spec["downstream"],
                          only_failed=spec["only_failed"], dry_run=True)
    return render_template("clear.html", dag=dag, summary=summary, spec=spec, found=found,
                           back=ti_url(dag_id, spec["task_id"], spec["when"]), tab=None)


@bp.post("/dags/<dag_id>/clear")
def clear(dag_id: str) -> Any:
    """Clear what the confirmation page listed."""
    _summary, dag = find_dag(dag_id)
    spec = _clear_request(dag, request.form)
    cleared = actions.clear(dag, [spec["task_id"]], spec["start"], spec["end"],
                            upstream=spec["upstream"], downstream=spec["downstream"],
                            only_failed=spec["only_failed"], owner=user_name())
    flash(f"Cleared {len(cleared)} task instance(s).")
    return redirect(ti_url(dag_id, spec["task_id"], spec["when"]))


@bp.post("/dags/<dag_id>/tasks/<task_id>/<execution_date>/mark")
def mark(dag_id: str, task_id: str, execution_date: str) -> Any:
    """Mark one task instance success or failed."""
    when = parse_date_value(execution_date)
    _summary, dag = find_dag(dag_id)
    state = request.form.get("state", "")
    if state not in actions.MARKABLE:
        abort(400, description=f"state: expected {' or '.join(actions.MARKABLE)}, got {state!r}")
    actions.mark(dag, task_id, when, state, user_name())
    flash(f"Marked {task_id} on {url_date(when)} {state}.")
    return redirect(ti_url(dag_id, task_id, when))
