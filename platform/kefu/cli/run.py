"""`kefu run`: everything a developer needs on one machine.

Starts (or finds) the services, migrates, seeds the demo data, then runs the
web server (gunicorn) and a worker as child processes until interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from kefu.cli.context import state
from kefu.cli.demo import print_demo_logins, seed_demo
from kefu.schema.alembic import upgrade_shared
from kefu.schema.upgrade import upgrade_tenants


def _children_env() -> dict[str, str]:
    settings = state().settings
    return {
        **os.environ,
        "KEFU_DATABASE_URL": settings.database_url,
        "KEFU_REDIS_URL": settings.redis_url,
        "KEFU_DATA_DIR": str(settings.data_dir),
    }


def _kefu_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kefu.cli", *args]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--workers",
    "web_workers",
    default=2,
    show_default=True,
    type=int,
    help="gunicorn worker processes.",
)
@click.option("--no-demo", is_flag=True, help="Skip the demo admin and tenants.")
def run(host: str, port: int, web_workers: int, no_demo: bool) -> None:
    """Run the platform: services, migrations, demo data, web and worker."""
    s = state()
    upgrade_shared(s.engine, s.settings.migrations_dir)
    failed = [r for r in upgrade_tenants(s.engine, s.settings) if not r.ok]
    if failed:
        raise click.ClickException(
            f"{len(failed)} tenant schema(s) failed to migrate; run `kefu db upgrade` for details"
        )
    demo_tenants = [] if no_demo else seed_demo()
    env = _children_env()
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "kefu.wsgi:app",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(web_workers),
            "--threads",
            "4",
            "--access-logfile",
            "-",
        ],
        env=env,
    )
    worker = subprocess.Popen(_kefu_command("worker"), env=env)
    base = f"http://{host}:{port}"
    click.secho("\nKefu is running.", fg="green", bold=True)
    click.echo(f"  web:          {base}/")
    click.echo(f"  API docs:     {base}/api/docs")
    click.echo(f"  readiness:    {base}/readyz")
    click.echo(f"  sign in:      {base}/login")
    if demo_tenants:
        print_demo_logins(demo_tenants)
        first = demo_tenants[0]
        click.echo(
            f"\n  try: curl -H 'Authorization: Bearer {first.api_key}' {base}/api/v1/customers"
        )
    click.echo("\nPress Ctrl-C to stop.")
    _supervise([web, worker])


def _supervise(children: list[subprocess.Popen[bytes]]) -> None:
    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        click.secho("a child process exited; stopping", fg="red")
    except KeyboardInterrupt:
        pass
    stop()
