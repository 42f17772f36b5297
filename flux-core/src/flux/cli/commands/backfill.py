"""``flux backfill``: run a DAG, or some of its tasks, over a date range."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from flux.cli.options import DATE, subdir_option


@click.command("backfill")
@click.argument("dag_id")
@click.option("-t", "--task_regex", "task_regex", default=None,
              help="The regex to filter specific task_ids to backfill (optional).")
@click.option("-s", "--start_date", "start_date", type=DATE, default=None,
              help="Override start_date YYYY-MM-DD.")
@click.option("-e", "--end_date", "end_date", type=DATE, default=None,
              help="Override end_date YYYY-MM-DD.")
@click.option("-m", "--mark_success", "mark_success", is_flag=True,
              help="Mark jobs as succeeded without running them.")
@subdir_option
@click.option("--executor", default=None, help="Executor name (default: [core] executor).")
@click.option("--parallelism", type=int, default=None,
              help="How many task instances may run at once (default: [core] parallelism).")
@click.option("--dry-run", is_flag=True, help="Only print what would run.")
@click.option("--reset-failed", is_flag=True,
              help="Clear failed and upstream_failed instances of the range first, to run them again.")
def backfill_command(dag_id: str, task_regex: str | None, start_date: datetime | None,
                     end_date: datetime | None, mark_success: bool, subdir: str | None,
                     executor: str | None, parallelism: int | None, dry_run: bool,
                     reset_failed: bool) -> None:
    """Run subsections of a DAG for a specified date range."""
    from flux.backfill import BackfillJob
    from flux.cli.loading import load_dag
    from flux.exceptions import ExecutorError

    if parallelism is not None and parallelism < 1:
        raise ExecutorError(f"--parallelism must be at least 1, got {parallelism}")
    dag = load_dag(dag_id, subdir)
    job = BackfillJob(dag, start_date, end_date, mark_success=mark_success, executor=executor,
                      task_regex=task_regex, parallelism=parallelism, reset_failed=reset_failed,
                      dry_run=dry_run, progress=True)
    result = job.run()
    if dry_run:
        return
    if result.nothing_to_do:
        click.echo(f"Nothing to do: every task instance of {dag_id} in this range already ran "
                   "(use 'flux clear' or --reset-failed to run them again).")
    click.echo(str(result))
    if result.interrupted:
        sys.exit(130)
    if not result.succeeded:
        sys.exit(1)


COMMANDS = [backfill_command]
