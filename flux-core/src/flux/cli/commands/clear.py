"""``flux clear``: reset task instances so they run again."""

from __future__ import annotations

from datetime import datetime

import click

from flux.cli.options import DATE, subdir_option


@click.command("clear")
@click.argument("dag_id")
@click.option("-t", "--task_regex", "task_regex", default=None,
              help="The regex to filter specific task_ids to clear (optional).")
@click.option("-s", "--start_date", "start_date", type=DATE, default=None,
              help="Override start_date YYYY-MM-DD.")
@click.option("-e", "--end_date", "end_date", type=DATE, default=None,
              help="Override end_date YYYY-MM-DD.")
@subdir_option
@click.option("-u", "--upstream", is_flag=True, help="Include upstream tasks.")
@click.option("-d", "--downstream", is_flag=True, help="Include downstream tasks.")
@click.option("-f", "--only-failed", "only_failed", is_flag=True, help="Only failed instances.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def clear_command(dag_id: str, task_regex: str | None, start_date: datetime | None,
                  end_date: datetime | None, subdir: str | None, upstream: bool, downstream: bool,
                  only_failed: bool, yes: bool) -> None:
    """Clear a set of task instances, as if they never ran."""
    from flux.cli.loading import load_dag
    from flux.dates import display

    dag = load_dag(dag_id, subdir)
    if start_date and end_date and end_date < start_date:
        raise click.ClickException(f"start date {display(start_date)} is after end date {display(end_date)}")
    options = dict(start_date=start_date, end_date=end_date, task_regex=task_regex,
                   only_failed=only_failed, include_upstream=upstream, include_downstream=downstream)
    found = dag.clear(dry_run=True, **options)  # type: ignore[arg-type]
    if not found:
        click.echo("No task instances to clear.")
        return
    click.echo(f"{len(found)} task instance(s) will be cleared:")
    for ti in found[:200]:
        click.echo(f"  {ti.task_id} {display(ti.execution_date)} [{ti.state}]")
    if len(found) > 200:
        click.echo(f"  ... and {len(found) - 200} more")
    if not yes:
        click.confirm("Clear them?", abort=True)
    cleared = dag.clear(**options)  # type: ignore[arg-type]
    _audit(dag_id, len(cleared))
    click.echo(f"Cleared {len(cleared)} task instance(s).")


def _audit(dag_id: str, count: int) -> None:
    import getpass
    import json

    from flux.dates import utcnow
    from flux.db import session_scope
    from flux.models import AuditLog

    with session_scope() as session:
        session.add(AuditLog(dttm=utcnow(), event="clear", owner=getpass.getuser(), dag_id=dag_id,
                             extra=json.dumps({"count": count, "source": "cli"})))


COMMANDS = [clear_command]
