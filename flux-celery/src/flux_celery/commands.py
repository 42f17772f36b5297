"""``flux worker``: start a Celery worker (click only at the top: ``flux --help`` imports this)."""

from __future__ import annotations

import click


@click.command("worker")
@click.option("-q", "--queues", default=None,
              help="Queues to consume, comma-separated (default: [celery] default_queue).")
@click.option("-c", "--concurrency", type=int, default=None,
              help="Task instances run at once (default: [celery] worker_concurrency).")
@click.option("--hostname", default=None,
              help="The worker's node name, e.g. etl1@%h (default: flux-<pid>@<host>).")
@click.option("--loglevel", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="Level of the worker's own log (task logs go to their files).")
def worker_command(queues: str | None, concurrency: int | None, hostname: str | None,
                   loglevel: str) -> None:
    """Start a Celery worker that runs task instances sent by the CeleryExecutor."""
    from flux_celery.settings import CelerySettings
    from flux_celery.worker import parse_queues, run_worker

    settings = CelerySettings.from_config()
    run_worker(parse_queues(queues, settings.default_queue),
               concurrency if concurrency is not None else settings.worker_concurrency,
               hostname, loglevel.upper())


COMMANDS = [worker_command]
