"""`kefu events ...`: the transactional outbox."""

from __future__ import annotations

import click

from kefu import events
from kefu.cli.context import cli_app, state
from kefu.database import shared_session, tenant_session, unit_of_work
from kefu.tenancy.models import TenantStatus
from kefu.tenancy.service import list_tenants


@click.group("events")
def events_group() -> None:
    """Domain events waiting in the tenants' outboxes."""


@events_group.command("sweep")
@click.option("--now", is_flag=True, help="Dispatch in this process instead of enqueuing jobs.")
def sweep(now: bool) -> None:
    """Dispatch every pending event (after a crash between commit and enqueue)."""
    s = state()
    with shared_session(s.engine) as session:
        tenants = list_tenants(session, TenantStatus.active)
    swept = 0
    with cli_app().app_context():
        for tenant in tenants:
            with unit_of_work(tenant_session(s.engine, tenant.schema)) as db:
                pending = events.pending_count(db)
                if pending and now:
                    events.dispatch_pending(db, tenant.slug)
            if pending and not now:
                events.enqueue_dispatch(tenant.slug)
            if pending:
                swept += 1
                click.echo(f"{tenant.slug}: {pending} pending event(s)")
    click.echo(f"{swept} tenant(s) had pending events; {'dispatched' if now else 'enqueued'}")
