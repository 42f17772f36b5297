"""``flux tasks list|state``: the tasks of a DAG and the state of one task instance."""

from __future__ import annotations

from datetime import datetime

import click

from flux.cli.options import DATE, subdir_option


@click.group("tasks")
def tasks_group() -> None:
    """List the tasks of a DAG, or show a task instance's state."""


@tasks_group.command("list")
@click.argument("dag_id")
@click.option("--tree", is_flag=True, help="Show the tasks as a tree (like 'flux dags show').")
@subdir_option
def tasks_list(dag_id: str, tree: bool, subdir: str | None) -> None:
    """List the task ids of a DAG."""
    from flux.cli.loading import load_dag

    dag = load_dag(dag_id, subdir)
    lines = dag.tree_lines() if tree else sorted(dag.task_ids)
    for line in lines:
        click.echo(line)


@tasks_group.command("state")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("execution_date", type=DATE)
@subdir_option
def tasks_state(dag_id: str, task_id: str, execution_date: datetime, subdir: str | None) -> None:
    """Print the state of a task instance ("None" if it never ran)."""
    from sqlalchemy import select

    from flux.cli.loading import load_dag
    from flux.db import session_scope
    from flux.models import TaskInstance

    dag = load_dag(dag_id, subdir)
    dag.get_task(task_id)
    with session_scope() as session:
        state = session.execute(select(TaskInstance.state).where(
            TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id,
            TaskInstance.execution_date == execution_date,
        )).scalar()
    click.echo(str(state))


COMMANDS = [tasks_group]
