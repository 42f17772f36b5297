"""The JSON API under ``/api/v1`` (described by ``/api/v1/openapi.json``).

Signed in like the pages: the session cookie, or HTTP basic credentials of a web user. Writes need
the admin role; with a session they need the ``X-CSRF-Token`` header too, with basic credentials a
JSON body. Errors are ``{"error": "<reason>", "status": <code>}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, jsonify, request

from flux.db import session_scope
from flux_web import actions, queries
from flux_web.logs import read_log
from flux_web.views.common import find_dag, int_arg, parse_date_value, user_name

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_json(run: Any) -> dict[str, Any]:
    import json

    try:
        conf = json.loads(run.conf) if run.conf else {}
    except ValueError:
        conf = None
    return {"dag_id": run.dag_id, "run_id": run.run_id, "execution_date": _iso(run.execution_date),
            "state": run.state, "run_type": run.run_type, "external_trigger": run.external_trigger,
            "conf": conf, "start_date": _iso(run.start_date), "end_date": _iso(run.end_date)}


def ti_json(ti: Any) -> dict[str, Any]:
    return {"dag_id": ti.dag_id, "task_id": ti.task_id, "execution_date": _iso(ti.execution_date),
            "state": ti.state, "try_number": ti.try_number, "max_tries": ti.max_tries,
            "start_date": _iso(ti.start_date), "end_date": _iso(ti.end_date),
            "duration": ti.duration, "hostname": ti.hostname, "pid": ti.pid,
            "operator": ti.operator, "pool": ti.pool, "queue": ti.queue,
            "priority_weight": ti.priority_weight, "note": ti.note}


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="the request body must be a JSON object")
    return body


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        abort(400, description=f"{name}: expected true or false, got {value!r}")
    return value


def _optional_date(body: dict[str, Any], name: str) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        abort(400, description=f"{name}: expected a date string, got {value!r}")
    return parse_date_value(value, name)


@bp.get("/dags")
def list_dags() -> Any:
    limit = int_arg(request.args, "limit", 100, 1, 1000)
    offset = int_arg(request.args, "offset", 0, 0, 10**9)
    if offset % limit:
        abort(400, description="offset must be a multiple of limit")
    with session_scope() as session:
        page = queries.dag_page(session, offset // limit + 1, limit, request.args.get("q") or None)
        errors = queries.import_errors(session)
    return jsonify(dags=[d.as_dict() for d in page.dags], total_entries=page.total,
                   import_errors=[{"filename": e.filename, "timestamp": _iso(e.timestamp),
                                   "stacktrace": e.stacktrace} for e in errors])


@bp.get("/dags/<dag_id>")
def get_dag(dag_id: str) -> Any:
    summary, dag = find_dag(dag_id)
    result = summary.as_dict()
    result["tasks"] = [{"task_id": t.task_id, "operator": t.operator_name,
                        "upstream_task_ids": sorted(t.upstream_task_ids),
                        "downstream_task_ids": sorted(t.downstream_task_ids)}
                       for t in dag.topological_sort()]
    return jsonify(result)


@bp.patch("/dags/<dag_id>")
def patch_dag(dag_id: str) -> Any:
    body = _body()
    if set(body) != {"is_paused"}:
        abort(400, description="only is_paused can be changed: send {\"is_paused\": true|false}")
    actions.set_paused(dag_id, _flag(body, "is_paused"), user_name())
    with session_scope() as session:
        return jsonify(queries.dag_summary(session, dag_id).as_dict())


@bp.get("/dags/<dag_id>/runs")
def list_runs(dag_id: str) -> Any:
    limit = int_arg(request.args, "limit", 100, 1, 1000)
    offset = int_arg(request.args, "offset", 0, 0, 10**9)
    with session_scope() as session:
        queries.dag_summary(session, dag_id)
        runs = queries.dag_runs(session, dag_id, limit, offset)
        return jsonify(dag_runs=[run_json(r) for r in runs])


@bp.post("/dags/<dag_id>/runs")
def trigger(dag_id: str) -> Any:
    body = _body()
    unknown = set(body) - {"conf", "execution_date"}
    if unknown:
        abort(400, description=f"unknown field(s): {', '.join(sorted(unknown))}")
    conf = body.get("conf", {})
    if isinstance(conf, str):
        conf = actions.parse_conf(conf)
    if not isinstance(conf, dict):
        abort(400, description=f"conf must be a JSON object, got {type(conf).__name__}")
    when = _optional_date(body, "execution_date")
    _summary, dag = find_dag(dag_id)
    from flux_web.dagcache import get_cache

    run = actions.trigger(get_cache().bag(dag.fileloc), dag_id, conf, when, user_name())
    return jsonify(run_json(run)), 201


@bp.get("/dags/<dag_id>/runs/<execution_date>/taskInstances")
def run_task_instances(dag_id: str, execution_date: str) -> Any:
    when = parse_date_value(execution_date)
    with session_scope() as session:
        queries.dag_summary(session, dag_id)
        tis = queries.task_instances_of_date(session, dag_id, when)
        return jsonify(task_instances=[ti_json(ti) for ti in tis])


def _ti_or_404(session: Any, dag_id: str, task_id: str, when: datetime) -> Any:
    ti = queries.get_task_instance(session, dag_id, task_id, when)
    if ti is None:
        abort(404, description=f"no task instance {task_id} of DAG {dag_id} on {when.isoformat()}")
    return ti


@bp.get("/dags/<dag_id>/tasks/<task_id>/instances/<execution_date>")
def get_task_instance(dag_id: str, task_id: str, execution_date: str) -> Any:
    when = parse_date_value(execution_date)
    with session_scope() as session:
        return jsonify(ti_json(_ti_or_404(session, dag_id, task_id, when)))


@bp.post("/dags/<dag_id>/tasks/<task_id>/instances/<execution_date>/state")
def set_state(dag_id: str, task_id: str, execution_date: str) -> Any:
    when = parse_date_value(execution_date)
    body = _body()
    state = body.get("state")
    if state not in actions.MARKABLE:
        abort(400, description=f"state: expected {' or '.join(actions.MARKABLE)}, got {state!r}")
    _summary, dag = find_dag(dag_id)
    actions.mark(dag, task_id, when, state, user_name())
    with session_scope() as session:
        return jsonify(ti_json(_ti_or_404(session, dag_id, task_id, when)))


@bp.get("/dags/<dag_id>/tasks/<task_id>/instances/<execution_date>/logs/<int:try_number>")
def get_log(dag_id: str, task_id: str, execution_date: str, try_number: int) -> Any:
    when = parse_date_value(execution_date)
    offset = int_arg(request.args, "offset", 0, 0, 2**62) if "offset" in request.args else None
    with session_scope() as session:
        ti = _ti_or_404(session, dag_id, task_id, when)
    if not 1 <= try_number <= max(ti.try_number, 1):
        abort(404, description=f"no try {try_number} (tries so far: {ti.try_number})")
    chunk = read_log(dag_id, task_id, when, try_number, offset, ti=ti)
    return jsonify(content=chunk.text, offset=chunk.offset, next_offset=chunk.next_offset,
                   exists=chunk.exists, size=chunk.size)


@bp.post("/dags/<dag_id>/clear")
def clear(dag_id: str) -> Any:
    body = _body()
    known = {"task_ids", "start_date", "end_date", "include_upstream", "include_downstream",
             "only_failed", "dry_run"}
    unknown = set(body) - known
    if unknown:
        abort(400, description=f"unknown field(s): {', '.join(sorted(unknown))}")
    task_ids = body.get("task_ids")
    if not isinstance(task_ids, list) or not task_ids or not all(isinstance(t, str) for t in task_ids):
        abort(400, description="task_ids: expected a non-empty list of task ids")
    start, end = _optional_date(body, "start_date"), _optional_date(body, "end_date")
    if start and end and end < start:
        abort(400, description="end_date is before start_date")
    _summary, dag = find_dag(dag_id)
    dry_run = _flag(body, "dry_run")
    found = actions.clear(dag, task_ids, start, end, upstream=_flag(body, "include_upstream"),
                          downstream=_flag(body, "include_downstream"),
                          only_failed=_flag(body, "only_failed"), dry_run=dry_run,
                          owner=user_name())
    return jsonify(dry_run=dry_run, task_instances=[
        {"task_id": ti.task_id, "execution_date": _iso(ti.execution_date), "state": ti.state}
        for ti in found])


@bp.get("/openapi.json")
def openapi() -> Any:
    from flux_web.openapi import document

    return jsonify(document())

