"""Platform admins, their tokens, and tenant API keys."""

from __future__ import annotations

from sqlalchemy import select

from kefu.access.models import Account, ApiKey
from kefu.access.secrets_util import digest
from kefu.database import shared_session
from tests.conftest import ADMIN_PASSWORD, login_headers, make_admin

LOGIN = "/api/auth/v1/login"
LOGOUT = "/api/auth/v1/logout"
TENANTS = "/api/platform/v1/tenants"


def test_password_is_stored_as_argon2(state) -> None:
    email = make_admin(state)
    with shared_session(state.engine) as session:
        account = session.scalar(select(Account).where(Account.email == email))
    assert account.password_hash.startswith("$argon2id$")
    assert ADMIN_PASSWORD not in account.password_hash


def test_wrong_password_and_unknown_email_look_the_same(client, state) -> None:
    email = make_admin(state)
    wrong = client.post(LOGIN, json={"email": email, "password": "not it at all"})
    unknown = client.post(LOGIN, json={"email": "nobody@example.com", "password": "whatever1"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json
    assert wrong.json["code"] == "invalid_credentials"


def test_login_is_case_insensitive_and_logout_revokes(client, state) -> None:
    email = make_admin(state)
    response = client.post(LOGIN, json={"email": email.upper(), "password": ADMIN_PASSWORD})
    assert response.status_code == 201
    headers = {"Authorization": f"Bearer {response.json['access_token']}"}
    assert client.get(TENANTS, headers=headers).status_code == 200
    assert client.post(LOGOUT, headers=headers).status_code == 204
    revoked = client.get(TENANTS, headers=headers)
    assert revoked.status_code == 401 and revoked.json["code"] == "invalid_token"


def test_platform_api_requires_a_token(client, tenant) -> None:
    assert client.get(TENANTS).status_code == 401
    # A tenant API key is not a platform credential.
    assert client.get(TENANTS, headers=tenant.headers).status_code == 401


def test_support_role_reads_but_cannot_change(client, state, tenant) -> None:
    headers = login_headers(client, make_admin(state, role="support"))
    assert client.get(f"{TENANTS}/{tenant.slug}", headers=headers).status_code == 200
    denied = client.post(f"{TENANTS}/{tenant.slug}/suspend", headers=headers)
    assert denied.status_code == 403 and denied.json["code"] == "platform_role_required"
    denied_key = client.post(
        f"{TENANTS}/{tenant.slug}/api-keys", json={"name": "x"}, headers=headers
    )
    assert denied_key.status_code == 403


def test_api_key_shown_once_stored_hashed_and_revocable(
    client, admin_headers, state, tenant
) -> None:
    created = client.post(
        f"{TENANTS}/{tenant.slug}/api-keys", json={"name": "订单系统"}, headers=admin_headers
    )
    assert created.status_code == 201
    secret = created.json["key"]
    assert secret.startswith("kefu_")
    with shared_session(state.engine) as session:
        row = session.get(ApiKey, created.json["id"])
    assert row.key_hash == digest(secret) and secret not in row.key_hash

    listed = client.get(f"{TENANTS}/{tenant.slug}/api-keys", headers=admin_headers).json
    assert all("key" not in item for item in listed)
    assert "订单系统" in [item["name"] for item in listed]

    key_headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/customers", headers=key_headers).status_code == 200
    with shared_session(state.engine) as session:
        assert session.get(ApiKey, created.json["id"]).last_used_at is not None

    revoked = client.delete(
        f"{TENANTS}/{tenant.slug}/api-keys/{created.json['id']}", headers=admin_headers
    )
    assert revoked.status_code == 200 and revoked.json["revoked_at"] is not None
    refused = client.get("/api/v1/customers", headers=key_headers)
    assert refused.status_code == 401 and refused.json["code"] == "invalid_api_key"


def test_api_key_of_another_tenant_cannot_be_revoked_through_this_one(
    client, admin_headers, tenant, other_tenant
) -> None:
    created = client.post(
        f"{TENANTS}/{tenant.slug}/api-keys", json={"name": "a"}, headers=admin_headers
    ).json
    wrong = client.delete(
        f"{TENANTS}/{other_tenant.slug}/api-keys/{created['id']}", headers=admin_headers
    )
    assert wrong.status_code == 404 and wrong.json["code"] == "api_key_not_found"


def test_cli_admin_create_and_api_key(cli, client, tenant) -> None:
    result = cli("admin", "create", "--email", "Ops@Example.com", "--password", "long enough pass")
    assert result.exit_code == 0, result.output
    duplicate = cli(
        "admin", "create", "--email", "ops@example.com", "--password", "long enough pass"
    )
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    short = cli("admin", "create", "--email", "x@example.com", "--password", "short")
    assert short.exit_code == 1 and "password" in short.output
    login = client.post(LOGIN, json={"email": "ops@example.com", "password": "long enough pass"})
    assert login.status_code == 201 and login.json["account"]["platform_role"] == "owner"

    key = cli("admin", "api-key", tenant.slug, "--name", "cli key").output.strip()
    assert (
        client.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"}).status_code
        == 200
    )


def test_audit_log_is_append_only_in_the_database(state) -> None:
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    for statement in (
        "UPDATE kefu_platform.audit_events SET actor = 'forged'",
        "DELETE FROM kefu_platform.audit_events",
    ):
        with pytest.raises(DBAPIError, match="append-only"), state.engine.begin() as connection:
            connection.execute(text(statement))
