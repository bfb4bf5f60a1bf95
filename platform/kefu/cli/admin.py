"""`kefu admin ...`: platform admin accounts and tenant API keys."""

from __future__ import annotations

import click

from kefu.access import accounts, api_keys
from kefu.cli.context import reports_api_errors, state
from kefu.database import shared_session, unit_of_work
from kefu.tenancy.service import get_tenant, list_tenants


@click.group()
def admin() -> None:
    """Platform admin accounts and API keys."""


@admin.command("create")
@click.option("--email", required=True)
@click.option("--name", "display_name", default="", help="Display name.")
@click.option(
    "--role", type=click.Choice(accounts.PLATFORM_ROLES), default="owner", show_default=True
)
@click.password_option("--password", help="At least 10 characters (prompted when omitted).")
@reports_api_errors
def create(email: str, display_name: str, role: str, password: str) -> None:
    """Create a platform admin account (argon2-hashed password)."""
    with unit_of_work(shared_session(state().engine)) as session:
        account = accounts.create_platform_admin(
            session, email=email, password=password, display_name=display_name, role=role
        )
        click.echo(f"created platform {role} {account.email}")


@admin.command("api-key")
@click.argument("tenant_slug")
@click.option("--name", required=True, help="What the key is for, e.g. 'order system'.")
@reports_api_errors
def api_key(tenant_slug: str, name: str) -> None:
    """Create an API key for a tenant; the secret is printed once."""
    with unit_of_work(shared_session(state().engine)) as session:
        tenant = get_tenant(session, tenant_slug)
        created = api_keys.create_api_key(session, tenant=tenant, name=name, actor="cli")
    click.echo(created.secret)


@admin.command("reindex-memberships")
def reindex_memberships() -> None:
    """Rebuild the shared memberships index from every tenant's agents.

    The index is written after each agent change commits; if that write was lost
    (a crash between the two), this puts it right. Safe to run at any time.
    """
    from kefu.access.accounts import rebuild_memberships

    s = state()
    with shared_session(s.engine) as session:
        tenants = list_tenants(session)
    total = 0
    for tenant in tenants:
        total += rebuild_memberships(s.engine, tenant.slug, tenant.schema)
    click.echo(f"memberships indexed: {total} across {len(tenants)} tenant(s)")
