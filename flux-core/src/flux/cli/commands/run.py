"""``flux run``, ``flux test`` and ``flux render``: one task instance, from the command line."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import click

from flux.cli.options import DATE, subdir_option

FAILED_STATES = ("failed", "up_for_retry", "upstream_failed")


class _Buffer(logging.Handler):
    """Keeps the records logged before the task's log file is known (DAG loading)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _load_task(dag_id: str, task_id: str, subdir: str | None) -> Any:
    from flux.cli.loading import load_dag

    return load_dag(dag_id, subdir).get_task(task_id)


@click.command("run")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("execution_date", type=DATE)
@subdir_option
@click.option("-m", "--mark_success", "mark_success", is_flag=True,
              help="Mark the task instance as succeeded without running it.")
@click.option("-f", "--force", is_flag=True, help="Run it even if it already succeeded.")
@click.option("-i", "--ignore_dependencies", "ignore_dependencies", is_flag=True,
              help="Ignore upstream and depends_on_past dependencies.")
@click.option("-p", "--pickle", "pickle_id", hidden=True,
              help="Accepted for compatibility; Flux ships DAGs as files, not pickles.")
def run_command(dag_id: str, task_id: str, execution_date: datetime, subdir: str | None,
                mark_success: bool, force: bool, ignore_dependencies: bool,
                pickle_id: str | None) -> None:
    """Run a single task instance."""
    from flux.taskrunner import RunOptions, run_task_instance

    buffer = _Buffer()
    flux_logger = logging.getLogger("flux")
    flux_logger.addHandler(buffer)
    previous_level = flux_logger.level
    flux_logger.setLevel(logging.INFO)
    try:
        task = _load_task(dag_id, task_id, subdir)
    finally:
        flux_logger.removeHandler(buffer)
        flux_logger.setLevel(previous_level)
    options = RunOptions(force=force, mark_success=mark_success,
                         ignore_dependencies=ignore_dependencies,
                         announce=lambda path: click.echo(f"Logging into: {path}"),
                         early_records=buffer.records)
    result = run_task_instance(task, execution_date, options)
    if not result.ran:
        click.echo(result.message)
    if result.state in FAILED_STATES:
        raise SystemExit(1)


@click.command("test")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("execution_date", type=DATE)
@subdir_option
def test_command(dag_id: str, task_id: str, execution_date: datetime, subdir: str | None) -> None:
    """Run a task instance without checking dependencies or recording its state."""
    from flux.taskrunner import RunOptions, run_task_instance

    task = _load_task(dag_id, task_id, subdir)
    result = run_task_instance(task, execution_date, RunOptions(test_mode=True,
                                                                ignore_dependencies=True))
    if result.state in FAILED_STATES:
        raise SystemExit(1)


@click.command("render")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("execution_date", type=DATE)
@subdir_option
def render_command(dag_id: str, task_id: str, execution_date: datetime, subdir: str | None) -> None:
    """Show every templated field of a task instance, rendered."""
    import copy

    from flux.context import build_context
    from flux.models import TaskInstance
    from flux.tasklog import mask

    task = copy.copy(_load_task(dag_id, task_id, subdir))
    ti = TaskInstance(dag_id=dag_id, task_id=task_id, execution_date=execution_date, try_number=1)
    ti.task = task
    rendered = task.render_template_fields(build_context(ti, task))
    if not rendered:
        click.echo(f"{task!r} has no templated fields")
    for name, value in rendered.items():
        click.echo(f"# {'-' * 60}\n# property: {name}\n# {'-' * 60}")
        click.echo(mask(value if isinstance(value, str) else repr(value)))


COMMANDS = [run_command, test_command, render_command]
