"""`kefu demo`: a platform admin and two demo tenants with API keys and customers."""

from __future__ import annotations

from dataclasses import dataclass

import click
from sqlalchemy import select

from kefu.access import accounts, api_keys
from kefu.access.models import Account, ApiKey
from kefu.cli.context import cli_app, state
from kefu.database import shared_session, tenant_session, unit_of_work, utcnow
from kefu.modules import default_modules
from kefu.tenancy import service as tenancy
from kefu.tenancy.models import Tenant

DEMO_ADMIN_EMAIL = "admin@kefu.local"
DEMO_ADMIN_PASSWORD = "kefu-demo-admin"
DEMO_KEY_NAME = "demo"
DEMO_TENANTS = (
    ("demo_shop", "旗舰店 Flagship Store"),
    ("demo_travel", "旅行服务 Travel Services"),
)
DEMO_CUSTOMERS = (
    {
        "name": "张伟",
        "emails": ["zhang.wei@example.cn"],
        "phones": ["+86 138 0013 8000"],
        "tags": ["vip", "售后"],
        "vip_level": 3,
    },
    {"name": "李娜", "emails": ["li.na@example.cn"], "tags": ["售前"], "vip_level": 0},
    {"name": "Emma Wilson", "emails": ["emma@example.com"], "tags": ["vip"], "vip_level": 2},
)


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    display_name: str
    api_key: str


def ensure_demo_admin() -> None:
    with unit_of_work(shared_session(state().engine)) as session:
        if session.scalar(select(Account.id).where(Account.email == DEMO_ADMIN_EMAIL)) is None:
            accounts.create_platform_admin(
                session,
                email=DEMO_ADMIN_EMAIL,
                password=DEMO_ADMIN_PASSWORD,
                display_name="Demo admin",
                role="owner",
            )


def _ensure_tenant(slug: str, display_name: str) -> bool:
    s = state()
    with shared_session(s.engine) as session:
        exists = session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None
    if exists:
        return False
    tenancy.create_tenant(
        s.engine,
        tenancy.TenantSpec(slug, display_name, default_modules(), {}),
        known_modules=list(s.modules),
        migrations_dir=s.settings.migrations_dir,
        actor="demo",
    )
    return True


def _fresh_demo_key(slug: str) -> str:
    """Secrets are shown once, so each demo run revokes the old demo key and makes a new one."""
    with unit_of_work(shared_session(state().engine)) as session:
        tenant = tenancy.get_tenant(session, slug)
        for key in session.scalars(
            select(ApiKey).where(
                ApiKey.tenant_id == tenant.id,
                ApiKey.name == DEMO_KEY_NAME,
                ApiKey.revoked_at.is_(None),
            )
        ):
            key.revoked_at = utcnow()
        return api_keys.create_api_key(
            session, tenant=tenant, name=DEMO_KEY_NAME, actor="demo"
        ).secret


def _seed_customers(slug: str) -> None:
    from kefu.customers import service as customers

    schema = tenancy.tenant_by_slug(state().engine, slug).schema
    with cli_app().app_context(), unit_of_work(tenant_session(state().engine, schema)) as db:
        for data in DEMO_CUSTOMERS:
            customers.create_customer(db, dict(data))


DEMO_AGENT_PASSWORD = "kefu-demo-agent"
# (email local part, display name, role, unit name, vendor or None)
DEMO_TEAM = (
    ("lead", "王组长", "team_lead", "售后一组", None),
    ("agent", "李客服", "agent", "售后一组", None),
    ("vendor", "外包小赵", "outsourced_agent", "远航外包组", "远航外包"),
)


def demo_agent_email(local: str, slug: str) -> str:
    return f"{local}.{slug}@kefu.local"


def _seed_team(slug: str) -> None:
    """A small team whose agents can sign in (passwords set directly for the demo)."""
    from kefu.access.passwords import hash_password
    from kefu.agents.service import agents, org, roles
    from kefu.request_context import system_principal

    s = state()
    with cli_app().test_request_context():
        principal = system_principal(slug)
        schema = tenancy.tenant_by_slug(s.engine, slug).schema
        with unit_of_work(tenant_session(s.engine, schema)) as db:
            units: dict[str, int] = {}
            for local, name, role_key, unit_name, vendor in DEMO_TEAM:
                if unit_name not in units:
                    units[unit_name] = org.create_unit(
                        db,
                        principal,
                        {
                            "name": unit_name,
                            "kind": "team",
                            "sourcing": "outsourced" if vendor else "in_house",
                            "vendor": vendor,
                        },
                    ).id
                agents.invite_agent(
                    db,
                    principal,
                    {
                        "email": demo_agent_email(local, slug),
                        "display_name": name,
                        "unit_id": units[unit_name],
                        "role_ids": [roles.role_by_key(db, role_key).id],
                    },
                )
    with unit_of_work(shared_session(s.engine)) as session:
        for local, *_ in DEMO_TEAM:
            account = session.scalar(
                select(Account).where(Account.email == demo_agent_email(local, slug))
            )
            account.password_hash = hash_password(DEMO_AGENT_PASSWORD)


def seed_demo() -> list[DemoTenant]:
    ensure_demo_admin()
    created = []
    for slug, name in DEMO_TENANTS:
        if _ensure_tenant(slug, name):
            _seed_customers(slug)
            _seed_team(slug)
        created.append(DemoTenant(slug, name, _fresh_demo_key(slug)))
    return created


def print_demo_logins(tenants: list[DemoTenant]) -> None:
    click.echo(f"  platform admin: {DEMO_ADMIN_EMAIL} / {DEMO_ADMIN_PASSWORD}")
    for tenant in tenants:
        click.echo(f"  tenant {tenant.slug} ({tenant.display_name}): API key {tenant.api_key}")
        for local, name, role_key, *_ in DEMO_TEAM:
            click.echo(
                f"    {role_key:<17} {demo_agent_email(local, tenant.slug)} / "
                f"{DEMO_AGENT_PASSWORD}  ({name})"
            )


@click.command()
def demo() -> None:
    """Create (or refresh) the demo admin and demo tenants; print their credentials."""
    print_demo_logins(seed_demo())
