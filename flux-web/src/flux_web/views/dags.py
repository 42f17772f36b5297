"""The DAG pages: the list, and one DAG's tree, graph, Gantt chart, durations and code; pause, trigger."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from flux.db import session_scope
from flux.exceptions import DagNotFound
from flux.state import State
from flux_web import actions, queries
from flux_web.dagcache import get_cache
from flux_web.security import admin_only, safe_next
from flux_web.templating import quoted_date, state_class, ti_url, ti_url_prefix, url_date, when
from flux_web.views.common import date_arg, find_dag, int_arg, parse_date_value, user_name

bp = Blueprint("dags", __name__)
bp.flux_menu = [("DAGs", "dags.index")]  # type: ignore[attr-defined]

#: most code a code view shows (a DAG file is small; a huge one is not worth a browser tab)
MAX_CODE_BYTES = 2 * 1024 * 1024


@bp.get("/")
def home() -> Any:
    return redirect(url_for("dags.index"))


@bp.get("/dags")
def index() -> Any:
    """Every DAG: owner, schedule, paused flag, its latest runs' states, next run; broken files."""
    page = int_arg(request.args, "page", 1, 1, 10**6)
    page_size = int_arg(request.args, "page_size", 100, 1, 1000)
    search = (request.args.get("q") or "").strip()[:250] or None
    with session_scope() as session:
        result = queries.dag_page(session, page, page_size, search)
        errors = queries.import_errors(session)
    return render_template("dags.html", result=result, errors=errors, search=search or "",
                           run_states=[s for s in (State.SUCCESS, State.RUNNING, State.FAILED,
                                                   "queued")])


@bp.get("/dags/<dag_id>")
def dag_home(dag_id: str) -> Any:
    return redirect(url_for("dags.tree", dag_id=dag_id))


@bp.get("/dags/<dag_id>/tree")
def tree(dag_id: str) -> Any:
    """Tasks as rows (in ``dag.tree_lines()`` order), dates as columns, one square per instance."""
    base_date = date_arg(request.args, "base_date")
    num_runs = int_arg(request.args, "num_runs", 25, 1, 365)
    summary, dag = find_dag(dag_id)
    with session_scope() as session:
        grid = queries.tree_grid(session, dag_id, base_date, num_runs)
    rows, truncated = queries.tree_rows(dag)
    return render_template("tree.html", dag=dag, summary=summary, grid=grid,
                           columns=_tree_columns(dag_id, grid), rows=_tree_cells(dag_id, grid, rows),
                           truncated=truncated, num_runs=num_runs, base_date=base_date, tab="tree")


def _tree_columns(dag_id: str, grid: queries.TreeGrid) -> list[dict[str, Any]]:
    columns = []
    for d in grid.dates:
        run = grid.runs.get(d)
        columns.append({"key": url_date(d), "label": when(d), "run_state": run[1] if run else None,
                        "run_class": state_class(run[1]) if run else "s-none",
                        "graph_url": url_for("dags.graph", dag_id=dag_id, execution_date=url_date(d))})
    return columns


def _tree_cells(dag_id: str, grid: queries.TreeGrid, rows: list[Any]) -> list[dict[str, Any]]:
    """Each row with its cells as ready markup (thousands of cells: the template would escape and
    format each value one by one). Safe by construction: classes come from a fixed set, links from
    percent-quoted ids, and state labels are escaped once each."""
    keys = [quoted_date(d) for d in grid.dates]
    labels: dict[str | None, str] = {}
    classes: dict[str | None, str] = {}
    cells = grid.cells
    out = []
    for depth, task in rows:
        task_id = task.task_id
        prefix = ti_url_prefix(dag_id, task_id)
        parts = []
        for d, key in zip(grid.dates, keys, strict=True):
            cell = cells.get((task_id, d))
            state = cell[0] if cell else None
            label = labels.get(state)
            if label is None:
                label = labels[state] = str(escape(state or "no state"))
                classes[state] = state_class(state)
            parts.append(f'<td><a class="sq {classes[state]}" href="{prefix}{key}" '
                         f'title="{label}"></a></td>')
        out.append({"depth": depth, "task_id": task_id, "operator": task.operator_name,
                    "cells": Markup("".join(parts))})
    return out


def _chosen_date(dag_id: str, session: Any) -> tuple[Any, list[Any]]:
    runs = queries.dag_runs(session, dag_id, limit=100)
    chosen = date_arg(request.args, "execution_date")
    if chosen is None:
        dates = queries.recent_dates(session, dag_id, None, 1)
        chosen = dates[-1] if dates else None
    return chosen, runs


@bp.get("/dags/<dag_id>/graph")
def graph(dag_id: str) -> Any:
    """The DAG laid out left to right (dagre), nodes coloured by the states of one run."""
    summary, dag = find_dag(dag_id)
    with session_scope() as session:
        chosen, runs = _chosen_date(dag_id, session)
        states = ({ti.task_id: ti.state for ti in queries.task_instances_of_date(session, dag_id, chosen)}
                  if chosen is not None else {})
    data = {
        "nodes": [{"id": t.task_id, "operator": t.operator_name, "state": states.get(t.task_id),
                   "url": ti_url(dag_id, t.task_id, chosen) if chosen is not None else None}
                  for t in dag.topological_sort()],
        "edges": [[t.task_id, down] for t in dag.task_dict.values()
                  for down in sorted(t.downstream_task_ids)],
        "colors": {str(k).lower() if k else "none": v for k, v in State.COLORS.items()},
    }
    return render_template("graph.html", dag=dag, summary=summary, runs=runs, chosen=chosen,
                           data=data, tab="graph")


@bp.get("/dags/<dag_id>/gantt")
def gantt(dag_id: str) -> Any:
    """When each task instance of one run started and ended."""
    summary, dag = find_dag(dag_id)
    with session_scope() as session:
        chosen, runs = _chosen_date(dag_id, session)
        tis = queries.task_instances_of_date(session, dag_id, chosen) if chosen is not None else []
    bars = [{"task_id": ti.task_id, "state": ti.state, "try_number": ti.try_number,
             "start": ti.start_date.timestamp() * 1000,
             "end": (ti.end_date or ti.heartbeat or ti.start_date).timestamp() * 1000,
             "color": State.COLORS.get(ti.state, "#000000"),
             "url": ti_url(dag_id, ti.task_id, ti.execution_date)}
            for ti in tis if ti.start_date is not None]
    return render_template("gantt.html", dag=dag, summary=summary, runs=runs, chosen=chosen,
                           data={"bars": bars}, tab="gantt")


@bp.get("/dags/<dag_id>/durations")
def durations(dag_id: str) -> Any:
    """Each task's duration over the latest runs (a line per task)."""
    num_runs = int_arg(request.args, "num_runs", 30, 1, 365)
    summary, dag = find_dag(dag_id)
    with session_scope() as session:
        dates, series = queries.durations(session, dag_id, num_runs)
    order = [t.task_id for t in dag.topological_sort()]
    order += sorted(set(series) - set(order))
    data = {"dates": [url_date(d) for d in dates],
            "series": [{"task_id": task_id, "values": series[task_id]} for task_id in order
                       if task_id in series]}
    return render_template("durations.html", dag=dag, summary=summary, data=data,
                           num_runs=num_runs, tab="durations")


@bp.get("/dags/<dag_id>/code")
def code(dag_id: str) -> Any:
    """The DAG's file, highlighted."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    summary, dag = find_dag(dag_id)
    try:
        with open(dag.fileloc, "rb") as handle:
            source = handle.read(MAX_CODE_BYTES + 1)
    except OSError as exc:
        raise DagNotFound(f"cannot read the file of DAG {dag_id!r}: {exc.strerror}") from None
    cut = len(source) > MAX_CODE_BYTES
    formatter = HtmlFormatter(linenos="table", cssclass="highlight")
    # Pygments escapes the source: the result is safe markup.
    html = highlight(source[:MAX_CODE_BYTES].decode("utf-8", errors="replace"), PythonLexer(),
                     formatter)
    return render_template("code.html", dag=dag, summary=summary, code_html=html, cut=cut,
                           code_css=formatter.get_style_defs(".highlight"), tab="code")


@bp.post("/dags/<dag_id>/paused")
def set_paused(dag_id: str) -> Any:
    """Pause (``paused=true``) or unpause (``paused=false``) a DAG."""
    value = request.form.get("paused", "")
    if value not in ("true", "false"):
        abort(400, description=f"paused: expected true or false, got {value!r}")
    paused = value == "true"
    actions.set_paused(dag_id, paused, user_name())
    flash(f"DAG {dag_id} is {'paused' if paused else 'unpaused'}.")
    return redirect(safe_next(request.form.get("next"), url_for("dags.index")))


@bp.route("/dags/<dag_id>/trigger", methods=["GET", "POST"])
@admin_only
def trigger(dag_id: str) -> Any:
    """A form to start a manual run with a JSON ``conf``; the run is queued for the scheduler."""
    summary, dag = find_dag(dag_id)
    if request.method == "POST":
        conf = actions.parse_conf(request.form.get("conf"))
        raw_date = (request.form.get("execution_date") or "").strip()
        when = parse_date_value(raw_date) if raw_date else None
        run = actions.trigger(get_cache().bag(dag.fileloc), dag_id, conf, when, user_name())
        flash(f"Created run {run.run_id} of {dag_id}.")
        return redirect(url_for("dags.tree", dag_id=dag_id))
    return render_template("trigger.html", dag=dag, summary=summary, tab="trigger")
