"""Identity flows end to end on real PostgreSQL and Redis: sign-in limits, token
rotation and revocation, API key scopes and rotation, support access, tenant
admins, team templates and the audit query."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from kefu.access.models import ApiKey
from kefu.app import create_app
from kefu.audit import AuditEvent
from kefu.database import shared_session, unit_of_work, utcnow
from kefu.modules import permission_catalogue
from kefu.platform_state import PlatformState, platform
from kefu.settings import Settings
from tests.conftest import (
    ADMIN_PASSWORD,
    AGENT_PASSWORD,
    AgentHandle,
    TenantHandle,
    login_headers,
    make_admin,
)

AUTH = "/api/auth/v1"
LOGIN = f"{AUTH}/login"
PLATFORM = "/api/platform/v1"
CUSTOMERS = "/api/v1/customers"
AGENTS = "/api/v1/agents"
PHONE = "+8613800138000"
EMAIL = "zhang.wei@example.cn"
NEW_PASSWORD = "a-brand-new-password"

MakeAgent = Callable[..., AgentHandle]
MakeUnit = Callable[..., int]


# --- helpers ----------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unknown_email() -> str:
    return f"nobody-{uuid.uuid4().hex[:8]}@example.com"


def login(
    client: FlaskClient, email: str, password: str, tenant: str | None = None
) -> TestResponse:
    return client.post(LOGIN, json={"email": email, "password": password, "tenant": tenant})


def choose_tenant(client: FlaskClient, headers: dict[str, str], slug: str) -> TestResponse:
    return client.post(f"{AUTH}/tenant", json={"tenant": slug}, headers=headers)


def assert_error(response: TestResponse, status: int, code: str) -> None:
    assert response.status_code == status, response.json
    assert response.json["code"] == code, response.json


def audit_events(state: PlatformState, **where: Any) -> list[AuditEvent]:
    query = select(AuditEvent).filter_by(**where).order_by(AuditEvent.id)
    with shared_session(state.engine) as session:
        return list(session.scalars(query))


def audit_actions(state: PlatformState, **where: Any) -> list[str]:
    return [event.action for event in audit_events(state, **where)]


def create_customer(client: FlaskClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = client.post(CUSTOMERS, json={"name": "张伟", **fields}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def customer_names(client: FlaskClient, headers: dict[str, str]) -> set[str]:
    response = client.get(f"{CUSTOMERS}?limit=100", headers=headers)
    assert response.status_code == 200, response.json
    return {item["name"] for item in response.json["items"]}


def reset_token(client: FlaskClient, caplog: pytest.LogCaptureFixture, email: str) -> str:
    """Ask for a reset link and read the token from the logged link (non-production)."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kefu.mail"):
        response = client.post(f"{AUTH}/password-reset", json={"email": email})
    assert response.status_code == 202
    links = [r.getMessage() for r in caplog.records if r.name == "kefu.mail"]
    assert len(links) == 1 and email in links[0], links
    return re.search(r"token=(\S+)", links[0]).group(1)


def set_password(client: FlaskClient, caplog: pytest.LogCaptureFixture, email: str) -> None:
    token = reset_token(client, caplog, email)
    confirm = {"token": token, "new_password": NEW_PASSWORD}
    assert client.post(f"{AUTH}/password-reset/confirm", json=confirm).status_code == 204


def owner(client: FlaskClient, state: PlatformState) -> tuple[str, dict[str, str]]:
    email = make_admin(state)
    return email, login_headers(client, email)


# --- login ------------------------------------------------------------------------


def test_wrong_password_and_unknown_email_get_identical_answers(client, state) -> None:
    email = make_admin(state)
    wrong = login(client, email, "not the password")
    unknown = login(client, unknown_email(), "not the password")
    assert_error(wrong, 401, "invalid_credentials")
    assert wrong.json == unknown.json


def _fail(client: FlaskClient, email: str, times: int) -> None:
    for _ in range(times):
        assert_error(login(client, email, "wrong password!"), 401, "invalid_credentials")


def test_lockout_after_max_failures_even_for_unknown_emails(client, state, settings) -> None:
    known, unknown = make_admin(state), unknown_email()
    _fail(client, known, settings.login_max_failures)
    _fail(client, unknown, settings.login_max_failures)
    locked = login(client, known, ADMIN_PASSWORD)
    assert_error(locked, 429, "account_locked")
    assert login(client, unknown, ADMIN_PASSWORD).json == locked.json
    # Another account on the same address is not affected.
    assert login(client, make_admin(state), ADMIN_PASSWORD).status_code == 201


def in_parallel(action: Callable[[], int], count: int) -> list[int]:
    """Run `action` in `count` threads released together; their results, sorted."""
    barrier = threading.Barrier(count)
    results: list[int] = []

    def run() -> None:
        barrier.wait()
        results.append(action())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)


def test_parallel_guesses_cannot_exceed_the_lockout(app, state, settings) -> None:
    email = make_admin(state)

    def guess() -> int:
        return login(app.test_client(), email, "wrong password!").status_code

    # Two more than allowed; each request may hold two pooled connections (of 15).
    statuses = in_parallel(guess, settings.login_max_failures + 2)
    assert statuses == [401] * settings.login_max_failures + [429] * 2, statuses
    assert_error(login(app.test_client(), email, ADMIN_PASSWORD), 429, "account_locked")


@pytest.fixture
def strict_app(settings: Settings) -> Iterator[Flask]:
    """A second app allowing three sign-in attempts per address, with its own Redis keys."""
    changed = dataclasses.replace(
        settings, login_max_per_address=3, job_queue_prefix=f"kefuaddr{uuid.uuid4().hex[:8]}"
    )
    application = create_app(changed)
    application.config["TESTING"] = True
    yield application
    platform(application).engine.dispose()


def test_attempts_per_address_are_limited(strict_app, state) -> None:
    client = strict_app.test_client()
    email = make_admin(state)
    for _ in range(3):
        assert login(client, unknown_email(), "wrong password!").status_code == 401
    # The fourth attempt is refused although the password is right.
    assert_error(login(client, email, ADMIN_PASSWORD), 429, "too_many_attempts")


def test_password_reset_requests_share_the_address_limit(strict_app) -> None:
    client = strict_app.test_client()
    for _ in range(3):
        response = client.post("/api/auth/v1/password-reset", json={"email": unknown_email()})
        assert response.status_code == 202
    flood = client.post("/api/auth/v1/password-reset", json={"email": unknown_email()})
    assert_error(flood, 429, "too_many_attempts")


def _seconds(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def test_unknown_email_takes_about_as_long_as_a_wrong_password(client, state) -> None:
    email = make_admin(state)
    login(client, unknown_email(), "warm up please")
    unknown, wrong = [], []
    for _ in range(5):  # interleaved, so drift affects both sides alike
        unknown.append(_seconds(lambda: login(client, unknown_email(), "wrong password!")))
        wrong.append(_seconds(lambda: login(client, email, "wrong password!")))
    mean_unknown, mean_wrong = sum(unknown) / 5, sum(wrong) / 5
    assert max(mean_unknown, mean_wrong) < 2 * min(mean_unknown, mean_wrong), (unknown, wrong)


def test_failed_and_successful_logins_are_audited(client, state) -> None:
    email, stranger = make_admin(state), unknown_email()
    login(client, email, "wrong password!")
    login(client, stranger, "wrong password!")
    assert login(client, email, ADMIN_PASSWORD).status_code == 201
    assert audit_actions(state, actor=email) == ["account.login_failed", "account.login"]
    assert audit_actions(state, actor=stranger) == ["account.login_failed"]


# --- tokens -----------------------------------------------------------------------


def test_unscoped_token_must_be_exchanged_for_a_tenant(
    client, tenant: TenantHandle, other_tenant: TenantHandle, make_agent: MakeAgent
) -> None:
    agent = make_agent(tenant, "agent")
    signed_in = login(client, agent.email, AGENT_PASSWORD)
    assert signed_in.status_code == 201 and signed_in.json["tenant"] is None
    unscoped = bearer(signed_in.json["access_token"])
    assert_error(client.get(CUSTOMERS, headers=unscoped), 403, "token_not_scoped")
    me = client.get(f"{AUTH}/me", headers=unscoped).json
    assert me["tenant"] is None and [t["slug"] for t in me["tenants"]] == [tenant.slug]

    scoped = choose_tenant(client, unscoped, tenant.slug)
    assert scoped.status_code == 201 and scoped.json["tenant"]["slug"] == tenant.slug
    mine = client.get(f"{AGENTS}/me", headers=bearer(scoped.json["access_token"]))
    assert mine.status_code == 200 and mine.json["agent_id"] == agent.agent_id

    assert_error(choose_tenant(client, unscoped, other_tenant.slug), 403, "not_a_member")
    direct = login(client, agent.email, AGENT_PASSWORD, tenant=other_tenant.slug)
    assert_error(direct, 403, "not_a_member")


def test_tenant_token_sees_only_its_own_tenant(
    client, tenant: TenantHandle, other_tenant: TenantHandle, make_agent: MakeAgent
) -> None:
    create_customer(client, tenant.headers, name="甲方客户")
    theirs = [create_customer(client, other_tenant.headers, name=f"乙方客户{n}") for n in (1, 2)]
    admin = make_agent(tenant, "tenant_admin")
    assert customer_names(client, admin.headers) == {"甲方客户"}
    # Ids are per tenant schema: B's second customer has no counterpart in A.
    hidden = client.get(f"{CUSTOMERS}/{theirs[1]['id']}", headers=admin.headers)
    assert_error(hidden, 404, "customer_not_found")
    assert customer_names(client, other_tenant.headers) == {"乙方客户1", "乙方客户2"}


def refresh(client: FlaskClient, refresh_token: str) -> TestResponse:
    return client.post(f"{AUTH}/refresh", json={"refresh_token": refresh_token})


def test_refresh_rotates_and_reuse_revokes_the_family(
    client, state, tenant: TenantHandle, make_agent: MakeAgent
) -> None:
    agent = make_agent(tenant, "agent")
    first = refresh(client, agent.refresh_token)
    assert first.status_code == 201 and first.json["tenant"]["slug"] == tenant.slug
    assert_error(client.get(f"{AGENTS}/me", headers=agent.headers), 401, "invalid_token")
    second = refresh(client, first.json["refresh_token"])
    newest = bearer(second.json["access_token"])
    assert client.get(f"{AGENTS}/me", headers=newest).status_code == 200

    assert_error(refresh(client, agent.refresh_token), 401, "invalid_token")
    assert_error(client.get(f"{AGENTS}/me", headers=newest), 401, "invalid_token")
    assert_error(refresh(client, second.json["refresh_token"]), 401, "invalid_token")
    assert "account.refresh_reuse" in audit_actions(state, actor=agent.email)


def test_concurrent_refreshes_of_one_token_yield_one_pair(
    app, tenant: TenantHandle, make_agent: MakeAgent
) -> None:
    agent = make_agent(tenant, "agent")

    def spend() -> int:
        return refresh(app.test_client(), agent.refresh_token).status_code

    assert in_parallel(spend, 6) == [201] + [401] * 5


def test_logout_revokes_the_pair(client, tenant: TenantHandle, make_agent: MakeAgent) -> None:
    agent = make_agent(tenant, "agent")
    assert client.post(f"{AUTH}/logout", headers=agent.headers).status_code == 204
    assert_error(client.get(f"{AGENTS}/me", headers=agent.headers), 401, "invalid_token")
    assert_error(refresh(client, agent.refresh_token), 401, "invalid_token")


def test_password_change_needs_the_current_password(
    client, tenant: TenantHandle, make_agent: MakeAgent
) -> None:
    agent = make_agent(tenant, "agent")
    url = f"{AUTH}/password"
    wrong = {"current_password": "not my password", "new_password": NEW_PASSWORD}
    assert_error(client.post(url, json=wrong, headers=agent.headers), 401, "invalid_credentials")
    assert login(client, agent.email, AGENT_PASSWORD).status_code == 201
    right = {"current_password": AGENT_PASSWORD, "new_password": NEW_PASSWORD}
    assert client.post(url, json=right, headers=agent.headers).status_code == 204
    assert login(client, agent.email, AGENT_PASSWORD).status_code == 401
    assert login(client, agent.email, NEW_PASSWORD).status_code == 201


def test_password_reset_is_single_use_and_ends_every_sign_in(
    client, caplog, tenant: TenantHandle, make_agent: MakeAgent
) -> None:
    agent = make_agent(tenant, "agent")
    unscoped = bearer(login(client, agent.email, AGENT_PASSWORD).json["access_token"])
    with caplog.at_level(logging.WARNING, logger="kefu.mail"):
        nobody = client.post(f"{AUTH}/password-reset", json={"email": unknown_email()})
    assert nobody.status_code == 202 and not caplog.records
    token = reset_token(client, caplog, agent.email)

    confirm = {"token": token, "new_password": NEW_PASSWORD}
    assert client.post(f"{AUTH}/password-reset/confirm", json=confirm).status_code == 204
    again = client.post(f"{AUTH}/password-reset/confirm", json=confirm)
    assert again.status_code == 422 and "token" in again.json["errors"]
    assert login(client, agent.email, AGENT_PASSWORD).status_code == 401
    assert login(client, agent.email, NEW_PASSWORD).status_code == 201
    assert_error(client.get(f"{AGENTS}/me", headers=agent.headers), 401, "invalid_token")
    assert_error(client.get(f"{AUTH}/me", headers=unscoped), 401, "invalid_token")
    assert_error(refresh(client, agent.refresh_token), 401, "invalid_token")


def test_deactivated_agent_is_refused_on_the_next_request(
    client, tenant: TenantHandle, make_agent: MakeAgent
) -> None:
    admin, agent = make_agent(tenant, "tenant_admin"), make_agent(tenant, "agent")
    assert client.get(f"{AGENTS}/me", headers=agent.headers).status_code == 200  # now cached
    patched = client.patch(
        f"{AGENTS}/{agent.agent_id}", json={"status": "deactivated"}, headers=admin.headers
    )
    assert patched.status_code == 200 and patched.json["status"] == "deactivated"
    assert_error(client.get(f"{AGENTS}/me", headers=agent.headers), 403, "not_a_member")
    assert_error(client.get(CUSTOMERS, headers=agent.headers), 403, "not_a_member")


# --- API keys ---------------------------------------------------------------------


def api_keys_url(handle: TenantHandle) -> str:
    return f"{PLATFORM}/tenants/{handle.slug}/api-keys"


def new_key(
    client: FlaskClient, headers: dict[str, str], handle: TenantHandle, **fields: Any
) -> TestResponse:
    return client.post(api_keys_url(handle), json={"name": "集成", **fields}, headers=headers)


def test_scoped_api_key_can_only_use_its_scopes(client, admin_headers, tenant) -> None:
    created = new_key(client, admin_headers, tenant, scopes=["customers.view"])
    assert created.status_code == 201 and created.json["scopes"] == ["customers.view"]
    headers = bearer(created.json["key"])
    assert client.get(CUSTOMERS, headers=headers).status_code == 200
    denied = client.post(CUSTOMERS, json={"name": "x"}, headers=headers)
    assert_error(denied, 403, "permission_denied")

    unknown = new_key(client, admin_headers, tenant, scopes=["customers.view", "customers.fly"])
    assert unknown.status_code == 422
    assert "customers.fly" in unknown.json["errors"]["scopes"][0]


def test_expired_api_key_is_refused(client, admin_headers, state, tenant) -> None:
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    refused = new_key(client, admin_headers, tenant, expires_at=past)
    assert refused.status_code == 422 and "expires_at" in refused.json["errors"]

    future = (utcnow() + timedelta(days=1)).isoformat()
    created = new_key(client, admin_headers, tenant, expires_at=future).json
    headers = bearer(created["key"])
    assert client.get(CUSTOMERS, headers=headers).status_code == 200
    with unit_of_work(shared_session(state.engine)) as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == created["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert_error(client.get(CUSTOMERS, headers=headers), 401, "invalid_api_key")


def test_rotation_keeps_the_old_key_for_a_grace_period(client, admin_headers, state, tenant):
    old = new_key(client, admin_headers, tenant, scopes=["customers.view"]).json
    rotated = client.post(f"{api_keys_url(tenant)}/{old['id']}/rotate", headers=admin_headers)
    assert rotated.status_code == 201, rotated.json
    new = rotated.json
    assert new["key"] != old["key"] and new["id"] != old["id"]
    assert (new["name"], new["scopes"]) == (old["name"], old["scopes"])
    for secret in (new["key"], old["key"]):
        assert client.get(CUSTOMERS, headers=bearer(secret)).status_code == 200
    with shared_session(state.engine) as session:
        row = session.get(ApiKey, old["id"])
    assert row.replaced_by_id == new["id"]
    assert abs(row.expires_at - (utcnow() + timedelta(hours=24))) < timedelta(minutes=1)


# --- support access ---------------------------------------------------------------


def grants_url(handle: TenantHandle) -> str:
    return f"{PLATFORM}/tenants/{handle.slug}/support-grants"


def test_support_access_needs_a_grant_and_is_read_only(client, state, tenant) -> None:
    owner_email, owner_headers = owner(client, state)
    support_email = make_admin(state, role="support")
    support = login_headers(client, support_email)
    create_customer(client, tenant.headers, emails=[EMAIL], phones=[PHONE])
    assert_error(choose_tenant(client, support, tenant.slug), 403, "not_a_member")

    body = {"email": support_email, "hours": 2, "reason": "工单 #4711 排查"}
    self_granted = client.post(grants_url(tenant), json=body, headers=support)
    assert_error(self_granted, 403, "platform_role_required")
    grant = client.post(grants_url(tenant), json=body, headers=owner_headers)
    assert grant.status_code == 201, grant.json
    scoped = choose_tenant(client, support, tenant.slug)
    assert scoped.status_code == 201
    headers = bearer(scoped.json["access_token"])
    listing = client.get(CUSTOMERS, headers=headers)
    assert listing.status_code == 200 and len(listing.json["items"]) == 1
    assert PHONE not in listing.text and EMAIL not in listing.text
    denied = client.post(CUSTOMERS, json={"name": "x"}, headers=headers)
    assert_error(denied, 403, "permission_denied")

    revoked = client.delete(f"{grants_url(tenant)}/{grant.json['id']}", headers=owner_headers)
    assert revoked.status_code == 200 and revoked.json["revoked_at"] is not None
    assert_error(client.get(CUSTOMERS, headers=headers), 403, "not_a_member")
    assert_error(choose_tenant(client, support, tenant.slug), 403, "not_a_member")
    actions = audit_actions(state, actor=owner_email, tenant_slug=tenant.slug)
    assert actions == ["support_access.granted", "support_access.revoked"]


# --- tenant admins ----------------------------------------------------------------


def admins_url(handle: TenantHandle) -> str:
    return f"{PLATFORM}/modules/agents/tenants/{handle.slug}/admins"


def appoint_admin(client: FlaskClient, headers: dict[str, str], handle: TenantHandle) -> str:
    email = f"boss-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "display_name": "王经理"}
    response = client.post(admins_url(handle), json=body, headers=headers)
    assert response.status_code == 201, response.json
    assert [role["key"] for role in response.json["roles"]] == ["tenant_admin"]
    return email


def role_id(client: FlaskClient, headers: dict[str, str], key: str) -> int:
    listed = client.get(f"{AGENTS}/roles", headers=headers).json
    return next(role["id"] for role in listed if role["key"] == key)


def test_platform_admin_appoints_tenant_admins(
    client, caplog, admin_headers, tenant: TenantHandle, make_agent: MakeAgent
) -> None:
    email = appoint_admin(client, admin_headers, tenant)
    set_password(client, caplog, email)
    signed_in = login(client, email, NEW_PASSWORD, tenant=tenant.slug)
    assert signed_in.status_code == 201, signed_in.json
    headers = bearer(signed_in.json["access_token"])
    me = client.get(f"{AGENTS}/me", headers=headers).json
    assert me["permissions"] == dict.fromkeys(permission_catalogue(), "tenant")

    colleague = make_agent(tenant, "agent")
    admin_role = role_id(client, headers, "tenant_admin")
    url = f"{AGENTS}/{colleague.agent_id}/roles/{admin_role}"
    assert_error(client.put(url, headers=headers), 403, "role_rank_too_high")
    second = appoint_admin(client, admin_headers, tenant)
    listed = client.get(f"{AGENTS}?status=active", headers=headers).json
    admins = {a["email"] for a in listed if "tenant_admin" in {r["key"] for r in a["roles"]}}
    assert admins == {email, second}


# --- team templates ---------------------------------------------------------------


def units_by_id(client: FlaskClient, headers: dict[str, str]) -> dict[int, dict[str, Any]]:
    response = client.get(f"{AGENTS}/units", headers=headers)
    assert response.status_code == 200, response.json
    return {unit["id"]: unit for unit in response.json}


def subtree(units: dict[int, dict[str, Any]], root_id: int) -> list[dict[str, Any]]:
    prefix = units[root_id]["path"]
    return sorted(
        (u for u in units.values() if u["path"].startswith(prefix)), key=lambda u: u["path"]
    )


def shape(units: dict[int, dict[str, Any]], root_id: int) -> list[tuple[Any, ...]]:
    """The tree as (depth, name, kind, parent's name) rows, with ids left out."""
    rows = []
    for unit in subtree(units, root_id):
        parent = units.get(unit["parent_id"]) if unit["id"] != root_id else None
        depth = unit["path"].count("/") - units[root_id]["path"].count("/")
        rows.append((depth, unit["name"], unit["kind"], parent["name"] if parent else None))
    return rows


def assert_consistent_paths(units: dict[int, dict[str, Any]], root_id: int) -> None:
    for unit in subtree(units, root_id):
        parent = units.get(unit["parent_id"])
        expected = f"{parent['path'] if parent else '/'}{unit['id']}/"
        assert unit["path"] == expected, unit


@pytest.fixture
def team(tenant: TenantHandle, make_unit: MakeUnit) -> int:
    """A parent unit with two child teams; returns the parent's id."""
    parent = make_unit(tenant, "售后部")
    make_unit(tenant, "售后一组", parent_id=parent)
    make_unit(tenant, "售后二组", parent_id=parent)
    return parent


def test_copy_team_within_a_tenant(
    client, tenant: TenantHandle, team: int, make_unit: MakeUnit, make_agent: MakeAgent
) -> None:
    admin = make_agent(tenant, "tenant_admin")
    brand = make_unit(tenant, "新品牌")
    before = units_by_id(client, admin.headers)
    body = {"source_unit_id": team, "target_parent_id": brand}
    copied = client.post(f"{AGENTS}/units/copy", json=body, headers=admin.headers)
    assert copied.status_code == 201, copied.json
    new_root = copied.json["id"]
    assert copied.json["parent_id"] == brand
    after = units_by_id(client, admin.headers)
    assert {k: after[k] for k in before} == before  # the source is unchanged
    assert set(after) - set(before) == {u["id"] for u in subtree(after, new_root)}
    assert shape(after, new_root) == shape(before, team)
    assert len(shape(after, new_root)) == 3
    assert_consistent_paths(after, new_root)


def test_copy_team_across_tenants_brings_its_roles(
    client,
    admin_headers,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    team: int,
    make_agent: MakeAgent,
) -> None:
    admin = make_agent(tenant, "tenant_admin")
    role = {"key": "vip_desk", "name": "VIP 专席", "rank": 50, "scope": "own"}
    role["permissions"] = ["customers.edit", "customers.view"]
    created = client.post(f"{AGENTS}/roles", json=role, headers=admin.headers)
    assert created.status_code == 201, created.json
    child = next(u["id"] for u in subtree(units_by_id(client, admin.headers), team)[1:])
    make_agent(tenant, "vip_desk", unit_id=child)
    assert "vip_desk" not in target_roles(client, other_tenant)
    source_before = units_by_id(client, admin.headers)

    url = f"{PLATFORM}/modules/agents/tenants/{tenant.slug}/team-templates"
    body = {"source_unit_id": team, "target_tenant": other_tenant.slug}
    copied = client.post(url, json=body, headers=admin_headers)
    assert copied.status_code == 201, copied.json
    target = units_by_id(client, other_tenant.headers)
    new_root = copied.json["id"]
    assert set(target) == {u["id"] for u in subtree(target, new_root)}
    assert shape(target, new_root) == shape(source_before, team)
    assert_consistent_paths(target, new_root)
    assert units_by_id(client, admin.headers) == source_before
    copied_role = target_roles(client, other_tenant)["vip_desk"]
    assert (copied_role["rank"], sorted(copied_role["permissions"])) == (50, role["permissions"])


def target_roles(client: FlaskClient, handle: TenantHandle) -> dict[str, dict[str, Any]]:
    listed = client.get(f"{AGENTS}/roles", headers=handle.headers).json
    return {role["key"]: role for role in listed}


# --- audit query ------------------------------------------------------------------


def platform_audit(client: FlaskClient, headers: dict[str, str], **query: Any) -> list[dict]:
    response = client.get(f"{PLATFORM}/audit", query_string=query, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def all_pages(client: FlaskClient, headers: dict[str, str], **query: Any) -> list[list[dict]]:
    pages: list[list[dict]] = []
    while page := platform_audit(client, headers, **query, **_before(pages)):
        pages.append(page)
    return pages


def _before(pages: list[list[dict]]) -> dict[str, int]:
    return {"before_id": pages[-1][-1]["id"]} if pages else {}


def test_platform_audit_filters_and_pages_newest_first(
    client, admin_headers, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    keys = [new_key(client, admin_headers, tenant).json for _ in range(3)]
    client.post(f"{api_keys_url(tenant)}/{keys[0]['id']}/rotate", headers=admin_headers)
    client.delete(f"{api_keys_url(tenant)}/{keys[1]['id']}", headers=admin_headers)
    new_key(client, admin_headers, other_tenant)

    query = {"tenant": tenant.slug, "action": "api_key.*"}
    everything = platform_audit(client, admin_headers, **query)
    assert len(everything) == 7  # the fixture's key, three, rotation (two), revocation
    assert {e["tenant_slug"] for e in everything} == {tenant.slug}
    assert all(e["action"].startswith("api_key.") for e in everything)
    assert everything[0]["action"] == "api_key.revoked"
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True)

    pages = all_pages(client, admin_headers, **query, limit=3)
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [e["id"] for page in pages for e in page] == ids
    exact = platform_audit(client, admin_headers, tenant=tenant.slug, action="api_key.rotated")
    assert [e["target"] for e in exact] == [f"api_key:{keys[0]['id']}"]


def test_tenant_audit_log_shows_only_this_tenant(
    client, tenant: TenantHandle, other_tenant: TenantHandle, make_agent: MakeAgent
) -> None:
    auditor, trainee = make_agent(tenant, "auditor"), make_agent(tenant, "trainee")
    make_agent(other_tenant, "agent")
    url = f"{AGENTS}/audit"
    for query in ({}, {"tenant": other_tenant.slug}):
        response = client.get(url, query_string={**query, "limit": 500}, headers=auditor.headers)
        assert response.status_code == 200, response.json
        assert {e["tenant_slug"] for e in response.json} == {tenant.slug}
        assert {"agent.invited", "api_key.created"} <= {e["action"] for e in response.json}
    assert_error(client.get(url, headers=trainee.headers), 403, "permission_denied")


def test_password_change_ends_other_sign_ins(client, tenant, make_agent) -> None:
    agent = make_agent(tenant, "agent")
    other = client.post(
        "/api/auth/v1/login", json={"email": agent.email, "password": AGENT_PASSWORD}
    )
    other_headers = {"Authorization": f"Bearer {other.json['access_token']}"}
    assert client.get("/api/auth/v1/me", headers=other_headers).status_code == 200
    changed = client.post(
        "/api/auth/v1/password",
        headers=agent.headers,
        json={"current_password": AGENT_PASSWORD, "new_password": "a brand new password"},
    )
    assert changed.status_code == 204
    assert client.get("/api/auth/v1/me", headers=agent.headers).status_code == 200
    assert client.get("/api/auth/v1/me", headers=other_headers).status_code == 401


def test_deactivated_agent_cannot_choose_the_tenant(client, tenant, make_agent) -> None:
    admin = make_agent(tenant, "tenant_admin")
    agent = make_agent(tenant, "agent")
    off = client.patch(
        f"/api/v1/agents/{agent.agent_id}", json={"status": "deactivated"}, headers=admin.headers
    )
    assert off.status_code == 200
    login = client.post(
        "/api/auth/v1/login",
        json={"email": agent.email, "password": AGENT_PASSWORD, "tenant": tenant.slug},
    )
    assert login.status_code == 403 and login.json["code"] == "not_a_member"


def test_outsider_learns_nothing_about_other_slugs(client, tenant, make_agent) -> None:
    outsider = make_agent(tenant, "agent")
    unsigned = client.post(
        "/api/auth/v1/login", json={"email": outsider.email, "password": AGENT_PASSWORD}
    )
    headers = {"Authorization": f"Bearer {unsigned.json['access_token']}"}
    for slug in ("no_such_tenant_x", "demo_like_slug"):
        response = client.post("/api/auth/v1/tenant", json={"tenant": slug}, headers=headers)
        assert response.status_code == 403 and response.json["code"] == "not_a_member"
