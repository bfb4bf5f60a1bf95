"""`kefu`: the operators' command line. Each command group lives in its own module."""

from __future__ import annotations

import click

from kefu.cli import admin, db, demo, events, run, services, tenants, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Kefu: multi-tenant customer-service platform."""


for command in (
    tenants.tenants,
    db.db,
    admin.admin,
    worker.worker,
    run.run,
    demo.demo,
    services.services,
    events.events_group,
):
    main.add_command(command)
