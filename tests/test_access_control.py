"""Roles, scopes and the pyramid, enforced on every tenant endpoint."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from kefu.access.authz import PUBLIC, declared_permission
from kefu.agents.defaults import DEFAULT_ROLES
from kefu.audit import AuditEvent
from kefu.database import shared_session
from kefu.modules import permission_catalogue

DEFAULT_ROLE_KEYS = [role.key for role in DEFAULT_ROLES]
OUTSOURCED = {role.key for role in DEFAULT_ROLES if role.for_outsourced}
PHONE = "+8613800138000"
EMAIL = "zhang.wei@example.cn"


def tenant_endpoints(app) -> list[tuple[str, str, str | None]]:
    """(method, url with dummy ids, declared permission) for every /api/v1 operation."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        view_class = getattr(app.view_functions[rule.endpoint], "view_class", None)
        url = re.sub(r"<(?:int:)?[a-z_]+>", "1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            handler = getattr(view_class, method.lower(), None)
            found.append((method, url, declared_permission(handler) if handler else None))
    return found


def test_every_tenant_endpoint_declares_a_known_permission(app) -> None:
    catalogue = set(permission_catalogue())
    endpoints = tenant_endpoints(app)
    assert len(endpoints) > 20
    undeclared = [(m, u) for m, u, p in endpoints if p is None]
    assert undeclared == [], "endpoints without @requires(...)"
    unknown = [(m, u, p) for m, u, p in endpoints if p not in catalogue and p != PUBLIC]
    assert unknown == []


@pytest.fixture
def role_agents(tenant, make_agent, make_unit):
    """One signed-in agent per default role, in-house or outsourced as the role is meant."""
    in_house = make_unit(tenant, "一组")
    outsourced = make_unit(tenant, "外包组", sourcing="outsourced", vendor="远航外包")
    return {
        key: make_agent(tenant, key, unit_id=outsourced if key in OUTSOURCED else in_house)
        for key in DEFAULT_ROLE_KEYS
    }


def test_permission_matrix_for_every_default_role(app, client, tenant, role_agents) -> None:
    roles = {role.key: role for role in DEFAULT_ROLES}
    catalogue = permission_catalogue()
    for key, agent in role_agents.items():
        granted = set(catalogue) if "*" in roles[key].permissions else set(roles[key].permissions)
        for method, url, permission in tenant_endpoints(app):
            response = client.open(url, method=method, json={}, headers=agent.headers)
            denied = response.status_code == 403 and response.json["code"] == "permission_denied"
            should_deny = permission != PUBLIC and permission not in granted
            assert denied == should_deny, (key, method, url, permission, response.json)


def test_refusals_are_audited(client, tenant, role_agents, state) -> None:
    trainee = role_agents["trainee"]
    response = client.post("/api/v1/customers", json={"name": "x"}, headers=trainee.headers)
    assert response.status_code == 403
    with shared_session(state.engine) as session:
        event = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.tenant_slug == tenant.slug, AuditEvent.action == "access.denied")
            .order_by(AuditEvent.id.desc())
        ).first()
    assert event is not None and trainee.email in event.actor
    assert event.details["code"] == "permission_denied"
    assert event.target == "POST /api/v1/customers"


def role_id(client, headers, key: str) -> int:
    roles = client.get("/api/v1/agents/roles", headers=headers).json
    return next(role["id"] for role in roles if role["key"] == key)


def test_pyramid_blocks_escalation(client, tenant, make_agent, make_unit) -> None:
    team_a, team_b = make_unit(tenant, "A组"), make_unit(tenant, "B组")
    lead = make_agent(tenant, "team_lead", unit_id=team_a)
    member = make_agent(tenant, "agent", unit_id=team_a)
    stranger = make_agent(tenant, "agent", unit_id=team_b)
    supervisor_role = role_id(client, lead.headers, "supervisor")
    senior_role = role_id(client, lead.headers, "senior_agent")

    def refused(response, code: str) -> None:
        assert response.status_code == 403, response.json
        assert response.json["code"] == code

    grant_up = client.put(
        f"/api/v1/agents/{member.agent_id}/roles/{supervisor_role}", headers=lead.headers
    )
    refused(grant_up, "role_rank_too_high")
    own = client.put(f"/api/v1/agents/{lead.agent_id}/roles/{senior_role}", headers=lead.headers)
    refused(own, "self_management")
    outside = client.put(
        f"/api/v1/agents/{stranger.agent_id}/roles/{senior_role}", headers=lead.headers
    )
    refused(outside, "outside_scope")
    moved = client.post(
        f"/api/v1/agents/{member.agent_id}/move", json={"unit_id": team_b}, headers=lead.headers
    )
    refused(moved, "outside_scope")

    ok = client.put(f"/api/v1/agents/{member.agent_id}/roles/{senior_role}", headers=lead.headers)
    assert ok.status_code == 200
    assert "senior_agent" in [role["key"] for role in ok.json["roles"]]
    # The change takes effect on the member's very next request.
    me = client.get("/api/v1/agents/me", headers=member.headers).json
    assert "customers.merge" in me["permissions"]


def test_role_creation_respects_rank_and_held_permissions(client, tenant, make_agent, make_unit):
    supervisor = make_agent(tenant, "supervisor", unit_id=make_unit(tenant, "客服部"))
    base = {"key": "vip_desk", "name": "VIP 专席", "scope": "own"}
    too_high = client.post(
        "/api/v1/agents/roles",
        json={**base, "rank": 80, "permissions": ["customers.view"]},
        headers=supervisor.headers,
    )
    assert too_high.status_code == 403 and too_high.json["code"] == "role_rank_too_high"
    not_held = client.post(
        "/api/v1/agents/roles",
        json={
            **base,
            "rank": 50,
            "permissions": [
                "customers.view",
                "org.view",
                "audit.view",
                "roles.manage",
                "agents.manage",
            ],
            "scope": "tenant",
        },
        headers=supervisor.headers,
    )
    assert not_held.status_code == 403 and not_held.json["code"] == "permission_not_held"
    unknown = client.post(
        "/api/v1/agents/roles",
        json={**base, "rank": 50, "permissions": ["tickets.teleport"]},
        headers=supervisor.headers,
    )
    assert unknown.status_code == 422 and "permissions" in unknown.json["errors"]
    created = client.post(
        "/api/v1/agents/roles",
        json={**base, "rank": 50, "permissions": ["customers.view", "customers.view_pii"]},
        headers=supervisor.headers,
    )
    assert created.status_code == 201, created.json


def test_outsourced_lead_manages_only_their_vendor(client, tenant, make_agent, make_unit) -> None:
    vendor_unit = make_unit(tenant, "远航外包一组", sourcing="outsourced", vendor="远航外包")
    other_vendor = make_unit(tenant, "星辰外包", sourcing="outsourced", vendor="星辰外包")
    in_house = make_unit(tenant, "自营组")
    lead = make_agent(tenant, "outsourced_lead", unit_id=vendor_unit)
    own_agent = make_agent(tenant, "outsourced_agent", unit_id=vendor_unit)
    rival = make_agent(tenant, "outsourced_agent", unit_id=other_vendor)
    staff = make_agent(tenant, "agent", unit_id=in_house)

    visible = {a["id"] for a in client.get("/api/v1/agents", headers=lead.headers).json}
    assert visible == {lead.agent_id, own_agent.agent_id}
    for target in (rival, staff):
        response = client.patch(
            f"/api/v1/agents/{target.agent_id}", json={"max_concurrent": 9}, headers=lead.headers
        )
        assert response.status_code == 403 and response.json["code"] == "outside_scope"
    fine = client.patch(
        f"/api/v1/agents/{own_agent.agent_id}", json={"max_concurrent": 9}, headers=lead.headers
    )
    assert fine.status_code == 200 and fine.json["max_concurrent"] == 9
    in_house_role = role_id(client, lead.headers, "agent")
    refused = client.put(
        f"/api/v1/agents/{own_agent.agent_id}/roles/{in_house_role}", headers=lead.headers
    )
    assert refused.status_code == 403
    units = {u["id"] for u in client.get("/api/v1/agents/units", headers=lead.headers).json}
    assert units == {vendor_unit}


def test_data_scopes_in_agent_lists(client, tenant, make_agent, make_unit) -> None:
    department = make_unit(tenant, "售后部")
    team = make_unit(tenant, "售后一组", parent_id=department)
    other = make_unit(tenant, "售前组")
    supervisor = make_agent(tenant, "supervisor", unit_id=department)
    lead = make_agent(tenant, "team_lead", unit_id=team)
    member = make_agent(tenant, "agent", unit_id=team)
    outsider = make_agent(tenant, "agent", unit_id=other)

    def visible(agent) -> set[int]:
        return {a["id"] for a in client.get("/api/v1/agents", headers=agent.headers).json}

    assert visible(supervisor) == {supervisor.agent_id, lead.agent_id, member.agent_id}
    assert visible(lead) == {lead.agent_id, member.agent_id}
    assert visible(member) == {member.agent_id}
    hidden = client.get(f"/api/v1/agents/{outsider.agent_id}", headers=lead.headers)
    assert hidden.status_code == 404


def test_outsourced_agent_never_receives_unmasked_contact_data(client, tenant, role_agents) -> None:
    writer = role_agents["tenant_admin"]
    created = client.post(
        "/api/v1/customers",
        json={
            "name": "张伟",
            "emails": [EMAIL],
            "phones": [PHONE],
            "attributes": {"收货地址": "上海市浦东新区", "订单金额": 399, "等级": "金卡"},
        },
        headers=writer.headers,
    ).json
    assert created["phones"] == [PHONE]  # with customers.view_pii: unmasked
    other = client.post(
        "/api/v1/customers", json={"name": "dup", "emails": ["d@x.cn"]}, headers=writer.headers
    ).json
    for key in ("outsourced_agent", "outsourced_lead"):
        agent = role_agents[key]
        url = f"/api/v1/customers/{created['id']}"
        bodies = [
            client.get("/api/v1/customers", headers=agent.headers).data,
            client.get(url, headers=agent.headers).data,
            client.get(f"/api/v1/customers?email={EMAIL}", headers=agent.headers).data,
            client.patch(url, json={"tags": ["外包处理"]}, headers=agent.headers).data,
            client.post(
                "/api/v1/customers",
                json={"name": "新客", "phones": ["13912345678"]},
                headers=agent.headers,
            ).data,
        ]
        for body in bodies:
            text = body.decode()
            assert PHONE not in text and EMAIL not in text and "13912345678" not in text
            assert "浦东新区" not in text and "399" not in text
        single = client.get(url, headers=agent.headers).json
        assert single["phones"] == ["+86*******8000"] and single["emails"] == ["z***@example.cn"]
        assert single["attributes"]["等级"] == "金卡"
        reveal = client.post(f"{url}/reveal", headers=agent.headers)
        assert reveal.status_code == 403
    assert other["id"]


def test_reveal_with_permission_is_audited(client, tenant, role_agents, state) -> None:
    admin = role_agents["tenant_admin"]
    created = client.post(
        "/api/v1/customers", json={"name": "李娜", "phones": [PHONE]}, headers=admin.headers
    ).json
    agent = role_agents["agent"]
    revealed = client.post(f"/api/v1/customers/{created['id']}/reveal", headers=agent.headers)
    assert revealed.status_code == 200 and revealed.json["phones"] == [PHONE]
    with shared_session(state.engine) as session:
        actions = list(
            session.scalars(
                select(AuditEvent.actor).where(
                    AuditEvent.tenant_slug == tenant.slug,
                    AuditEvent.action == "customer.pii_revealed",
                )
            )
        )
    assert any(agent.email in actor for actor in actions)


def test_default_roles_are_seeded_and_editable(client, tenant, role_agents) -> None:
    admin = role_agents["tenant_admin"]
    roles = client.get("/api/v1/agents/roles", headers=admin.headers).json
    assert [r["key"] for r in roles] == [
        r.key for r in sorted(DEFAULT_ROLES, key=lambda r: -r.rank)
    ]
    trainee = next(r for r in roles if r["key"] == "trainee")
    edited = client.patch(
        f"/api/v1/agents/roles/{trainee['id']}",
        json={"permissions": ["customers.view", "customers.edit"]},
        headers=admin.headers,
    )
    assert edited.status_code == 200 and "customers.edit" in edited.json["permissions"]
    trainee_agent = role_agents["trainee"]
    now_allowed = client.post(
        "/api/v1/customers", json={"name": "学员建档"}, headers=trainee_agent.headers
    )
    assert now_allowed.status_code == 201


def test_another_tenant_cannot_see_or_change_agents_units_or_roles(
    client, tenant, other_tenant, make_agent, make_unit
) -> None:
    unit = make_unit(tenant, "甲组")
    victim = make_agent(tenant, "agent", unit_id=unit)
    intruder = make_agent(other_tenant, "tenant_admin")
    listed = client.get("/api/v1/agents", headers=intruder.headers).get_data(as_text=True)
    assert victim.email not in listed
    by_id = client.get(f"/api/v1/agents/{victim.agent_id}", headers=intruder.headers)
    assert victim.email not in by_id.get_data(as_text=True)  # ids are per schema
    changed = client.patch(
        f"/api/v1/agents/{victim.agent_id}", json={"max_concurrent": 1}, headers=intruder.headers
    )
    assert victim.email not in changed.get_data(as_text=True)
    units = client.get("/api/v1/agents/units", headers=intruder.headers).json
    assert "甲组" not in [u["name"] for u in units]
    switch = client.post(
        "/api/auth/v1/tenant", json={"tenant": tenant.slug}, headers=intruder.headers
    )
    assert switch.status_code == 403 and switch.json["code"] == "not_a_member"
    # The intruder's token names its own tenant; nothing in the request can redirect it.
    spoof = client.get("/api/v1/agents", headers={**intruder.headers, "X-Tenant": tenant.slug})
    assert victim.email not in spoof.get_data(as_text=True)


def test_reindex_rebuilds_a_lost_membership(cli, client, state, tenant, make_agent) -> None:
    from sqlalchemy import delete

    from kefu.access.models import Membership
    from kefu.database import unit_of_work
    from tests.conftest import AGENT_PASSWORD

    agent = make_agent(tenant, "agent")
    with unit_of_work(shared_session(state.engine)) as session:
        session.execute(delete(Membership).where(Membership.account_id == agent.account_id))
    body = {"email": agent.email, "password": AGENT_PASSWORD, "tenant": tenant.slug}
    lost = client.post("/api/auth/v1/login", json=body)
    assert lost.status_code == 403 and lost.json["code"] == "not_a_member"
    result = cli("admin", "reindex-memberships")
    assert result.exit_code == 0 and "memberships indexed" in result.output
    assert client.post("/api/auth/v1/login", json=body).status_code == 201
