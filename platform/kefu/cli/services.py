"""`kefu services ...`: the embedded PostgreSQL and Redis."""

from __future__ import annotations

import click

from kefu import embedded
from kefu.settings import Settings


@click.group()
def services() -> None:
    """Embedded PostgreSQL and Redis (used when no URLs are configured)."""


@services.command("start")
def start() -> None:
    """Start the embedded servers and print their URLs."""
    settings = Settings.from_env()
    urls = embedded.start_services(settings.data_dir)
    click.echo(f"KEFU_DATABASE_URL={urls.database_url}")
    click.echo(f"KEFU_REDIS_URL={urls.redis_url}")


@services.command("stop")
def stop() -> None:
    """Stop the embedded servers."""
    stopped = embedded.stop_services(Settings.from_env().data_dir)
    click.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")
