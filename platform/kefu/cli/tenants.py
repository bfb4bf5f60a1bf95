"""`kefu tenants ...`: provision and manage business lines."""

from __future__ import annotations

import json

import click

from kefu.cli.context import reports_api_errors, state
from kefu.database import shared_session, unit_of_work
from kefu.modules import default_modules
from kefu.tenancy import service
from kefu.tenancy.models import Tenant

CLI_ACTOR = "cli"


def _print_tenant(tenant: Tenant) -> None:
    click.echo(f"slug:      {tenant.slug}")
    click.echo(f"name:      {tenant.display_name}")
    click.echo(f"status:    {tenant.status.value}")
    click.echo(f"schema:    {tenant.schema} (revision {tenant.schema_revision})")
    click.echo(f"modules:   {', '.join(tenant.modules) or '-'}")
    click.echo(f"settings:  {json.dumps(tenant.settings, ensure_ascii=False)}")
    click.echo(f"created:   {tenant.created_at:%Y-%m-%d %H:%M:%S %Z}")


@click.group()
def tenants() -> None:
    """Provision and manage tenants (business lines)."""


@tenants.command("create")
@click.argument("slug")
@click.option("--name", "display_name", required=True, help="Display name, e.g. 旗舰店.")
@click.option(
    "--modules", default=None, help="Comma-separated modules (default: the standard set)."
)
@reports_api_errors
def create(slug: str, display_name: str, modules: str | None) -> None:
    """Create a tenant: schema, tables and migration stamp in one transaction."""
    s = state()
    chosen = [m.strip() for m in modules.split(",") if m.strip()] if modules else default_modules()
    tenant = service.create_tenant(
        s.engine,
        service.TenantSpec(slug=slug, display_name=display_name, modules=chosen, settings={}),
        known_modules=list(s.modules),
        migrations_dir=s.settings.migrations_dir,
        actor=CLI_ACTOR,
    )
    click.echo(f"created tenant {tenant.slug} (schema {tenant.schema})")


@tenants.command("list")
def list_() -> None:
    """List tenants."""
    with shared_session(state().engine) as session:
        rows = service.list_tenants(session)
    if not rows:
        click.echo("no tenants")
        return
    width = max(len(t.slug) for t in rows)
    for tenant in rows:
        click.echo(
            f"{tenant.slug:<{width}}  {tenant.status.value:<9}  {tenant.display_name}  "
            f"[{', '.join(tenant.modules)}]"
        )


@tenants.command("show")
@click.argument("slug")
@reports_api_errors
def show(slug: str) -> None:
    """Show one tenant."""
    with shared_session(state().engine) as session:
        _print_tenant(service.get_tenant(session, slug))


def _status_command(action: str, help_text: str) -> click.Command:
    @click.argument("slug")
    @reports_api_errors
    def command(slug: str) -> None:
        with unit_of_work(shared_session(state().engine)) as session:
            tenant = service.change_status(session, slug, action, actor=CLI_ACTOR)
            click.echo(f"tenant {slug} is {tenant.status.value}")

    return click.command(action, help=help_text)(command)


for _action, _help in (
    ("suspend", "Suspend a tenant: its API answers 403 tenant_suspended."),
    ("resume", "Resume a suspended or archived tenant."),
    ("archive", "Archive a tenant (required before delete)."),
):
    tenants.add_command(_status_command(_action, _help))


@tenants.command("delete")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Confirm: the schema and all its data are dropped.")
@reports_api_errors
def delete(slug: str, yes: bool) -> None:
    """Drop an archived tenant's schema and registry entry."""
    if not yes:
        raise click.UsageError("deleting drops every row of the tenant; pass --yes to confirm")
    service.delete_tenant(state().engine, slug, actor=CLI_ACTOR)
    click.echo(f"deleted tenant {slug}")


@tenants.command("modules")
@click.argument("slug")
@click.option("--enable", multiple=True, help="Module to enable (repeatable).")
@click.option("--disable", multiple=True, help="Module to disable (repeatable).")
@reports_api_errors
def modules_(slug: str, enable: tuple[str, ...], disable: tuple[str, ...]) -> None:
    """Enable or disable modules for a tenant; with no option, list them."""
    s = state()
    with unit_of_work(shared_session(s.engine)) as session:
        for name, enabled in [*((n, True) for n in enable), *((n, False) for n in disable)]:
            service.set_module_enabled(
                session, slug, name, enabled, actor=CLI_ACTOR, known_modules=list(s.modules)
            )
        tenant = service.get_tenant(session, slug)
        for name, module in s.modules.items():
            mark = "on " if name in tenant.modules else "off"
            click.echo(f"{mark}  {name}: {module.title}")
