"""``flux scheduler`` (alias ``flux master``, as in the seed): the long-running scheduler."""

from __future__ import annotations

import click

from flux.cli.options import alias, subdir_option


@click.command("scheduler")
@click.option("-d", "--dag_id", "dag_id", default=None, help="Only schedule this DAG.")
@subdir_option
@click.option("--executor", default=None, help="Executor name (default: [core] executor).")
@click.option("--parallelism", type=int, default=None, help="Task instances running at once.")
@click.option("-n", "--num-runs", "num_runs", type=int, default=None,
              help="Stop after this many scheduling passes (default: run until stopped).")
def scheduler_command(dag_id: str | None, subdir: str | None, executor: str | None,
                      parallelism: int | None, num_runs: int | None) -> None:
    """Start a scheduler instance."""
    import logging

    from flux.scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s - %(message)s")
    scheduler = Scheduler(subdir=subdir, dag_id=dag_id, executor=executor, parallelism=parallelism,
                          num_runs=num_runs)
    click.echo(f"Scheduler starting: DAGs from {scheduler.folder.path}, executor "
               f"{scheduler.executor.executor_name} (parallelism {scheduler.executor.parallelism})")
    scheduler.run()


COMMANDS = [scheduler_command, alias(scheduler_command, "master", "Start a master scheduler instance.")]
