"""``flux dags list|show|pause|unpause|trigger``: the DAGs of the DAG folder and their flags."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from flux.cli.options import DATE, subdir_option


@click.group("dags")
def dags_group() -> None:
    """List, show, pause, unpause and trigger DAGs."""


def _display_file(bag: Any, path: str) -> str:
    import os

    if bag.is_folder and path.startswith(bag.path.rstrip(os.sep) + os.sep):
        return os.path.relpath(path, bag.path)
    return path


def _error_summary(path: str, error: str) -> str:
    """``(line N) Exception: message`` — where in the DAG file it broke, and why."""
    import re

    from flux.dagbag import last_line

    lines = re.findall(rf'File "{re.escape(path)}", line (\d+)', error)
    where = f"(line {lines[-1]}) " if lines else ""
    return f"{where}{last_line(error).removeprefix('flux.exceptions.')}"


@dags_group.command("list")
@subdir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def dags_list(subdir: str | None, as_json: bool) -> None:
    """List the DAGs of the DAG folder, then the DAG files that failed to import."""
    from sqlalchemy import select

    from flux.cli.loading import load_dagbag
    from flux.db import session_scope
    from flux.models import DagModel

    bag = load_dagbag(subdir)
    with session_scope() as session:
        bag.sync_to_db(session)
        paused = dict(session.execute(
            select(DagModel.dag_id, DagModel.is_paused).where(DagModel.dag_id.in_(bag.dag_ids))
        ).all())
    rows = []
    for dag_id in bag.dag_ids:
        dag = bag.dags[dag_id]
        rows.append({
            "dag_id": dag_id,
            "file": _display_file(bag, dag.fileloc),
            "owner": dag.owner,
            "schedule": dag.schedule.describe(),
            "paused": bool(paused.get(dag_id)),
            "tasks": len(dag.task_dict),
        })
    errors = [{"file": _display_file(bag, path), "error": error}
              for path, error in sorted(bag.import_errors.items())]
    if as_json:
        click.echo(json.dumps({"dags": rows, "import_errors": errors}, indent=2))
        return
    from flux.cli.table import render_table

    if rows:
        headers = ["dag_id", "file", "owner", "schedule", "paused", "tasks"]
        click.echo(render_table(headers, [[r[h] for h in headers] for r in rows]))
    else:
        click.echo(f"No DAGs found in {bag.path}")
    if errors:
        click.echo()
        click.echo(f"Broken DAG files ({len(errors)}):")
        for path, error in sorted(bag.import_errors.items()):
            click.echo(f"  {_display_file(bag, path)}: {_error_summary(path, error)}")


@dags_group.command("show")
@click.argument("dag_id")
@subdir_option
def dags_show(dag_id: str, subdir: str | None) -> None:
    """Print the task tree of a DAG (each last task, its upstream tasks indented below)."""
    from flux.cli.loading import load_dag

    for line in load_dag(dag_id, subdir).tree_lines():
        click.echo(line)


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no USER variable
        return "unknown"


def _audit(session: Any, event: str, dag_id: str, execution_date: datetime | None = None,
           extra: dict[str, Any] | None = None) -> None:
    from flux.dates import utcnow
    from flux.models import AuditLog

    session.add(AuditLog(dttm=utcnow(), event=event, owner=_os_user(), dag_id=dag_id,
                         execution_date=execution_date,
                         extra=json.dumps(extra) if extra is not None else None))


def _set_paused(dag_id: str, subdir: str | None, paused: bool) -> None:
    from flux.db import session_scope
    from flux.models import DagModel

    with session_scope() as session:
        row = session.get(DagModel, dag_id)
        if row is None:
            # Not recorded yet: it must at least be in the DAG folder (DagNotFound otherwise).
            from flux.cli.loading import load_dagbag

            bag = load_dagbag(subdir)
            bag.get_dag(dag_id)
            bag.sync_to_db(session)
            row = session.get(DagModel, dag_id)
        word = "paused" if paused else "unpaused"
        if bool(row.is_paused) == paused:
            message = f"DAG {dag_id!r} was already {word}"
        else:
            row.is_paused = paused
            message = f"DAG {dag_id!r} is now {word}"
        _audit(session, "pause" if paused else "unpause", dag_id)
    click.echo(message)


@dags_group.command("pause")
@click.argument("dag_id")
@subdir_option
def dags_pause(dag_id: str, subdir: str | None) -> None:
    """Pause a DAG: the scheduler creates no new runs for it."""
    _set_paused(dag_id, subdir, True)


@dags_group.command("unpause")
@click.argument("dag_id")
@subdir_option
def dags_unpause(dag_id: str, subdir: str | None) -> None:
    """Unpause a DAG: the scheduler creates its runs again."""
    _set_paused(dag_id, subdir, False)


def parse_conf(text: str | None) -> dict[str, Any]:
    """``--conf``: a JSON object (``{}`` when not given)."""
    from flux.exceptions import InvalidDagRunConf

    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidDagRunConf(f"--conf is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidDagRunConf(
            f"--conf must be a JSON object like '{{\"key\": \"value\"}}', got {type(value).__name__}"
        )
    return value


@dags_group.command("trigger")
@click.argument("dag_id")
@click.option("-c", "--conf", default=None, metavar="JSON",
              help="A JSON object passed to the run (dag_run_conf in templates).")
@click.option("-e", "--exec-date", "exec_date", type=DATE, default=None,
              help="The execution date of the run (default: now).")
@subdir_option
def dags_trigger(dag_id: str, conf: str | None, exec_date: datetime | None,
                 subdir: str | None) -> None:
    """Create a manual run of a DAG (queued, for the scheduler to run)."""
    from flux.cli.loading import load_dagbag
    from flux.dates import display
    from flux.state import DagRunState
    from flux.trigger import trigger_dag

    values = parse_conf(conf)
    run = trigger_dag(load_dagbag(subdir), dag_id, values, exec_date, owner=_os_user())
    run_id, when = run.run_id, run.execution_date
    click.echo(f"Created run {run_id} of DAG {dag_id!r} for {display(when)} "
               f"(state {DagRunState.QUEUED}, conf {json.dumps(values)})")


COMMANDS = [dags_group]
