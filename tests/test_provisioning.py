"""Tenant provisioning and lifecycle: atomic creation, slug rules, CLI and API."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from kefu.api.errors import ApiError
from kefu.audit import AuditEvent
from kefu.database import schema_for_slug, shared_session
from kefu.schema.alembic import head_revision, schema_revision
from kefu.tenancy import service as tenancy
from kefu.tenancy.models import Tenant
from tests.conftest import unique_slug

TENANTS = "/api/platform/v1/tenants"


def schema_exists(state, schema: str) -> bool:
    with state.engine.connect() as connection:
        return (
            connection.execute(
                text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": schema}
            ).first()
            is not None
        )


def registry_row(state, slug: str) -> Tenant | None:
    with shared_session(state.engine) as session:
        return session.scalar(select(Tenant).where(Tenant.slug == slug))


def test_create_makes_schema_tables_and_stamp(state, make_tenant) -> None:
    handle = make_tenant()
    schema = handle.tenant.schema
    assert schema == schema_for_slug(handle.slug)
    with state.engine.connect() as connection:
        tables = set(
            connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}
            ).scalars()
        )
        revision = schema_revision(connection, schema)
    assert {"customers", "customer_external_ids", "idempotency_keys", "alembic_version"} <= tables
    head = head_revision(state.settings.migrations_dir, "tenant")
    assert revision == head == handle.tenant.schema_revision


@pytest.mark.parametrize("failing_step", ["create_all", "stamp"])
def test_failure_mid_way_leaves_no_schema_and_no_row(state, monkeypatch, failing_step) -> None:
    def explode(*args, **kwargs):
        raise RuntimeError(f"injected failure in {failing_step}")

    if failing_step == "create_all":
        monkeypatch.setattr(tenancy.TenantBase.metadata, "create_all", explode)
    else:
        monkeypatch.setattr(tenancy, "stamp_tenant_schema", explode)
    slug = unique_slug()
    with pytest.raises(RuntimeError, match="injected failure"):
        tenancy.create_tenant(
            state.engine,
            tenancy.TenantSpec(slug, "x", ["customers"], {}),
            known_modules=list(state.modules),
            migrations_dir=state.settings.migrations_dir,
            actor="tests",
        )
    assert registry_row(state, slug) is None
    assert not schema_exists(state, schema_for_slug(slug))


BAD_SLUGS = [
    ("ab", "must match"),
    ("Uppercase", "must match"),
    ("1starts_with_digit", "must match"),
    ("has-dash", "must match"),
    ("x" * 41, "must match"),
    ("public", "reserved"),
    ("information_schema", "reserved"),
    ("pg_catalog_copy", "pg_"),
    ('a"; DROP SCHEMA public CASCADE; --', "must match"),
    ("robert'); drop table tenants;--", "must match"),
    ("shop\x00", "must match"),
    ("店铺", "must match"),
    ("shop ", "must match"),
]


@pytest.mark.parametrize(("slug", "rule"), BAD_SLUGS)
def test_invalid_slugs_get_422_naming_the_rule(client, admin_headers, slug, rule) -> None:
    response = client.post(TENANTS, json={"slug": slug, "display_name": "x"}, headers=admin_headers)
    assert response.status_code == 422, response.json
    assert response.json["code"] == "validation_error"
    assert rule in response.json["errors"]["slug"][0]


def test_duplicate_slug_is_409(client, admin_headers, tenant) -> None:
    response = client.post(
        TENANTS, json={"slug": tenant.slug, "display_name": "again"}, headers=admin_headers
    )
    assert response.status_code == 409 and response.json["code"] == "tenant_exists"


def test_unknown_module_is_422(client, admin_headers) -> None:
    response = client.post(
        TENANTS,
        json={"slug": unique_slug(), "display_name": "x", "modules": ["customers", "teleport"]},
        headers=admin_headers,
    )
    assert response.status_code == 422 and "teleport" in response.json["errors"]["modules"][0]


def test_api_lifecycle_create_suspend_resume_archive_delete(client, admin_headers, state) -> None:
    slug = unique_slug("api")
    created = client.post(
        TENANTS, json={"slug": slug, "display_name": "天猫旗舰店"}, headers=admin_headers
    )
    assert created.status_code == 201, created.json
    assert created.json["status"] == "active"
    assert created.json["modules"] == ["agents", "customers", "webhooks"]
    assert created.json["display_name"] == "天猫旗舰店"
    key = client.post(f"{TENANTS}/{slug}/api-keys", json={"name": "erp"}, headers=admin_headers)
    tenant_headers = {"Authorization": f"Bearer {key.json['key']}"}
    assert client.get("/api/v1/customers", headers=tenant_headers).status_code == 200

    suspended = client.post(f"{TENANTS}/{slug}/suspend", headers=admin_headers)
    assert suspended.json["status"] == "suspended"
    blocked = client.get("/api/v1/customers", headers=tenant_headers)
    assert blocked.status_code == 403 and blocked.json["code"] == "tenant_suspended"

    early_delete = client.delete(f"{TENANTS}/{slug}?confirm={slug}", headers=admin_headers)
    assert early_delete.status_code == 409 and early_delete.json["code"] == "tenant_not_archived"

    assert client.post(f"{TENANTS}/{slug}/resume", headers=admin_headers).json["status"] == "active"
    assert client.get("/api/v1/customers", headers=tenant_headers).status_code == 200
    assert (
        client.post(f"{TENANTS}/{slug}/archive", headers=admin_headers).json["status"] == "archived"
    )
    archived = client.get("/api/v1/customers", headers=tenant_headers)
    assert archived.status_code == 403 and archived.json["code"] == "tenant_archived"
    bad_suspend = client.post(f"{TENANTS}/{slug}/suspend", headers=admin_headers)
    assert (
        bad_suspend.status_code == 409 and bad_suspend.json["code"] == "invalid_status_transition"
    )

    wrong_confirm = client.delete(f"{TENANTS}/{slug}?confirm=other", headers=admin_headers)
    assert wrong_confirm.status_code == 422 and "confirm" in wrong_confirm.json["errors"]
    assert (
        client.delete(f"{TENANTS}/{slug}?confirm={slug}", headers=admin_headers).status_code == 204
    )
    assert not schema_exists(state, schema_for_slug(slug))
    assert client.get(f"{TENANTS}/{slug}", headers=admin_headers).status_code == 404
    assert client.get("/api/v1/customers", headers=tenant_headers).status_code == 401
    with shared_session(state.engine) as session:
        actions = list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.tenant_slug == slug)
                .order_by(AuditEvent.id)
            )
        )
    assert actions == [
        "tenant.created",
        "api_key.created",
        "tenant.suspend",
        "tenant.resume",
        "tenant.archive",
        "tenant.deleted",
    ]


def test_unknown_tenant_is_404(client, admin_headers) -> None:
    response = client.get(f"{TENANTS}/no_such_tenant", headers=admin_headers)
    assert response.status_code == 404 and response.json["code"] == "tenant_not_found"


def test_cli_lifecycle(cli, state) -> None:
    slug = unique_slug("cli")
    created = cli("tenants", "create", slug, "--name", "京东店", "--modules", "customers")
    assert created.exit_code == 0, created.output
    assert slug in cli("tenants", "list").output
    shown = cli("tenants", "show", slug)
    assert "京东店" in shown.output and "active" in shown.output
    assert "suspended" in cli("tenants", "suspend", slug).output
    assert "active" in cli("tenants", "resume", slug).output
    refused = cli("tenants", "delete", slug, "--yes")
    assert refused.exit_code == 1 and "archived" in refused.output
    assert "archived" in cli("tenants", "archive", slug).output
    unconfirmed = cli("tenants", "delete", slug)
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.output
    assert cli("tenants", "delete", slug, "--yes").exit_code == 0
    assert registry_row(state, slug) is None
    assert not schema_exists(state, schema_for_slug(slug))


def test_cli_rejects_bad_slug_with_the_rule(cli) -> None:
    result = cli("tenants", "create", "pg_evil", "--name", "x")
    assert result.exit_code == 1 and "pg_" in result.output


def test_cli_modules(cli, tenant) -> None:
    disabled = cli("tenants", "modules", tenant.slug, "--disable", "customers")
    assert disabled.exit_code == 0 and "off  customers" in disabled.output
    enabled = cli("tenants", "modules", tenant.slug, "--enable", "customers")
    assert "on   customers" in enabled.output
    unknown = cli("tenants", "modules", tenant.slug, "--enable", "teleport")
    assert unknown.exit_code == 1 and "teleport" in unknown.output


def test_change_status_of_unknown_tenant_raises_not_found(state) -> None:
    with shared_session(state.engine) as session, pytest.raises(ApiError) as caught:
        tenancy.change_status(session, "nobody_here", "suspend", actor="tests")
    assert caught.value.code == "tenant_not_found"
