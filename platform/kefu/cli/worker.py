"""`kefu worker`: RQ workers inside an app context."""

from __future__ import annotations

import click
from rq import SimpleWorker, Worker

from kefu.cli.context import cli_app, state
from kefu.jobs import QUEUES, queue_names


@click.command()
@click.option(
    "--queue",
    "queues",
    multiple=True,
    type=click.Choice(QUEUES),
    help="Queues to serve, in priority order (default: all).",
)
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option(
    "--simple",
    is_flag=True,
    help="Run jobs in this process instead of forking one per job (high-volume queues).",
)
@click.option("--no-scheduler", is_flag=True, help="Do not run RQ's scheduler in this worker.")
def worker(queues: tuple[str, ...], burst: bool, simple: bool, no_scheduler: bool) -> None:
    """Start a worker for the job queues."""
    app = cli_app()
    s = state()
    names = [f"{s.settings.job_queue_prefix}:{q}" for q in queues] or queue_names(
        s.settings.job_queue_prefix
    )
    worker_class = SimpleWorker if simple else Worker
    with app.app_context():
        rq_worker = worker_class(names, connection=s.redis)
        rq_worker.work(
            burst=burst, with_scheduler=not no_scheduler, logging_level=s.settings.log_level
        )
