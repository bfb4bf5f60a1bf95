"""`kefu db ...`: migrations for the shared schema and every tenant schema."""

from __future__ import annotations

import sys

import click
from tqdm import tqdm

from kefu.cli.context import state
from kefu.database import shared_session
from kefu.schema.alembic import head_revision, schema_revision, upgrade_shared
from kefu.schema.upgrade import (
    TenantUpgradeResult,
    current_revisions,
    tenant_slugs,
    upgrade_tenants,
)
from kefu.tenancy import service


@click.group()
def db() -> None:
    """Database migrations."""


def _print_report(results: list[TenantUpgradeResult]) -> None:
    upgraded = [r for r in results if r.status == "upgraded"]
    current = [r for r in results if r.status == "current"]
    failed = [r for r in results if r.status == "failed"]
    for result in sorted(upgraded, key=lambda r: r.slug):
        click.echo(
            f"  upgraded  {result.slug}: {result.from_revision} -> {result.to_revision} "
            f"({result.seconds * 1000:.0f} ms)"
        )
    for result in sorted(failed, key=lambda r: r.slug):
        click.secho(
            f"  FAILED    {result.slug} (at {result.from_revision}): {result.error}", fg="red"
        )
    click.echo(
        f"tenants: {len(upgraded)} upgraded, {len(current)} already current, {len(failed)} failed"
    )
    if failed:
        click.echo("Fix the failures and run `kefu db upgrade` again; it resumes where it stopped.")


@db.command("upgrade")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=None,
    help="Tenant schemas migrated at once (default KEFU_MIGRATION_CONCURRENCY).",
)
@click.option("--tenant", "only", multiple=True, help="Only these tenants (repeatable).")
@click.option("--shared-only", is_flag=True, help="Only the shared schema.")
def upgrade(concurrency: int | None, only: tuple[str, ...], shared_only: bool) -> None:
    """Migrate the shared schema, then every tenant schema in parallel."""
    s = state()
    upgrade_shared(s.engine, s.settings.migrations_dir)
    click.echo(f"shared schema at {head_revision(s.settings.migrations_dir, 'shared')}")
    if shared_only:
        return
    slugs = list(only) or tenant_slugs(s.engine)
    with tqdm(total=len(slugs), unit="tenant", desc="tenant schemas", file=sys.stderr) as bar:
        results = upgrade_tenants(
            s.engine,
            s.settings,
            slugs=slugs,
            concurrency=concurrency,
            on_result=lambda result: bar.update(1),
        )
    _print_report(results)
    if any(not r.ok for r in results):
        sys.exit(1)


@db.command("status")
def status() -> None:
    """Each schema's revision against the head."""
    s = state()
    migrations = s.settings.migrations_dir
    shared_head = head_revision(migrations, "shared")
    tenant_head = head_revision(migrations, "tenant")
    with s.engine.connect() as connection:
        shared_rev = schema_revision(connection, "kefu_platform")
    shared_state = "ok" if shared_rev == shared_head else "BEHIND"
    click.echo(f"shared: {shared_rev} (head {shared_head}) {shared_state}")
    with shared_session(s.engine) as session:
        tenants = service.list_tenants(session)
    revisions = current_revisions(s.engine, [t.slug for t in tenants])
    behind = 0
    for tenant in tenants:
        revision = revisions.get(tenant.slug)
        state_text = "ok" if revision == tenant_head else "BEHIND"
        behind += revision != tenant_head
        click.echo(f"{tenant.slug}: {revision} {state_text}")
    click.echo(f"tenant head {tenant_head}: {len(tenants) - behind} current, {behind} behind")
    if behind or shared_rev != shared_head:
        sys.exit(1)


@db.command("revision")
@click.option("--plane", type=click.Choice(["shared", "tenant"]), required=True)
@click.option("-m", "--message", required=True)
@click.option(
    "--autogenerate/--empty",
    default=True,
    show_default=True,
    help="Compare the models with the database and write the difference.",
)
def revision(plane: str, message: str, autogenerate: bool) -> None:
    """Write a new migration script for one plane."""
    from kefu.schema.alembic import make_revision

    s = state()
    make_revision(s.engine, s.settings.migrations_dir, plane, message, autogenerate)
