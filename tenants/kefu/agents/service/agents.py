"""Agent profiles: invitation, profile changes, moves between units, roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.access import accounts
from kefu.access.authz import PermissionDenied, Principal
from kefu.agents.models import Agent, AgentRole, OrgUnit, Role
from kefu.agents.service.changes import access_changed
from kefu.agents.service.org import get_unit
from kefu.agents.service.roles import get_role, require_rank_below_own
from kefu.agents.service.scopes import (
    filter_agents,
    require_agent_in_scope,
    require_unit_in_scope,
)
from kefu.api.errors import Conflict, NotFound, ValidationFailed
from kefu.database import utcnow
from kefu.platform_state import platform

AGENTS_MANAGE = "agents.manage"
PROFILE_FIELDS = ("display_name", "level", "skills", "languages", "max_concurrent")


def get_agent(db: Session, agent_id: int) -> Agent:
    agent = db.get(Agent, agent_id)
    if agent is None:
        raise NotFound(f"Agent {agent_id} does not exist.", code="agent_not_found")
    return agent


def snapshot(agent: Agent) -> dict[str, Any]:
    return {
        **{name: getattr(agent, name) for name in PROFILE_FIELDS},
        "unit_id": agent.unit_id,
        "status": agent.status,
        "roles": sorted(role.key for role in agent.roles),
    }


def list_agents(db: Session, principal: Principal, args: dict[str, Any]) -> list[Agent]:
    scope = principal.require("agents.view")
    query = select(Agent).outerjoin(OrgUnit, Agent.unit_id == OrgUnit.id)
    query = filter_agents(query, principal, scope)
    if args.get("unit_id"):
        query = query.where(Agent.unit_id == args["unit_id"])
    if args.get("skill"):
        query = query.where(Agent.skills.contains([args["skill"]]))
    if args.get("status"):
        query = query.where(Agent.status == args["status"])
    return list(db.scalars(query.order_by(Agent.id)))


def get_visible_agent(db: Session, principal: Principal, agent_id: int) -> Agent:
    agent = get_agent(db, agent_id)
    try:
        require_agent_in_scope(principal, "agents.view", agent)
    except PermissionDenied:
        raise NotFound(f"Agent {agent_id} does not exist.", code="agent_not_found") from None
    return agent


def _unit_or_none(db: Session, unit_id: int | None) -> OrgUnit | None:
    return get_unit(db, unit_id) if unit_id else None


def invite_agent(db: Session, principal: Principal, data: dict[str, Any]) -> Agent:
    """Create the agent profile (and the account if the email is new)."""
    unit = _unit_or_none(db, data.get("unit_id"))
    require_unit_in_scope(principal, AGENTS_MANAGE, unit)
    account = accounts.find_or_create_account(
        platform().engine, email=data["email"], display_name=data["display_name"]
    )
    if db.scalar(select(Agent.id).where(Agent.account_id == account.id)) is not None:
        raise Conflict(f"{account.email} is already an agent here.", code="agent_exists")
    agent = Agent(
        account_id=account.id,
        email=account.email,
        unit_id=unit.id if unit else None,
        skills=[],
        languages=[],
        status="active",
        working_status="offline",
    )
    for name in PROFILE_FIELDS:
        if name in data:
            setattr(agent, name, data[name])
    agent.roles = []
    db.add(agent)
    db.flush()
    for role_id in data.get("role_ids", []):
        grant_role(db, principal, agent.id, role_id)
    accounts.add_membership_after_commit(db, account.id, principal.tenant_slug, agent.id)
    access_changed(db, principal, "agent.invited", f"agent:{agent.id}", after=snapshot(agent))
    return agent


def update_agent(db: Session, principal: Principal, agent_id: int, data: dict[str, Any]) -> Agent:
    agent = get_agent(db, agent_id)
    require_agent_in_scope(principal, AGENTS_MANAGE, agent)
    before = snapshot(agent)
    for name in PROFILE_FIELDS:
        if name in data:
            setattr(agent, name, data[name])
    if "status" in data and data["status"] != agent.status:
        if agent.id == principal.agent_id:
            raise PermissionDenied("You cannot deactivate yourself.", code="self_management")
        agent.status = data["status"]
    db.flush()
    access_changed(
        db, principal, "agent.updated", f"agent:{agent.id}", before=before, after=snapshot(agent)
    )
    return agent


def move_agent(db: Session, principal: Principal, agent_id: int, unit_id: int | None) -> Agent:
    agent = get_agent(db, agent_id)
    require_agent_in_scope(principal, AGENTS_MANAGE, agent)
    target = _unit_or_none(db, unit_id)
    require_unit_in_scope(principal, AGENTS_MANAGE, target)
    outsourced_roles = all(role.for_outsourced for role in agent.roles)
    if target is not None and target.sourcing == "outsourced" and not outsourced_roles:
        raise ValidationFailed(
            "unit_id", "an agent holding in-house roles cannot join an outsourced unit"
        )
    before = agent.unit_id
    agent.unit_id = target.id if target else None
    db.flush()
    db.refresh(agent)
    access_changed(
        db,
        principal,
        "agent.moved",
        f"agent:{agent.id}",
        before={"unit_id": before},
        after={"unit_id": agent.unit_id},
    )
    return agent


def _check_grant(principal: Principal, agent: Agent, role: Role) -> None:
    if agent.id == principal.agent_id:
        raise PermissionDenied("You cannot change your own roles.", code="self_management")
    require_agent_in_scope(principal, AGENTS_MANAGE, agent)
    require_rank_below_own(principal, role.rank)
    outsourced = agent.unit is not None and agent.unit.sourcing == "outsourced"
    if outsourced and not role.for_outsourced:
        raise PermissionDenied(
            f"Role {role.key} is for in-house staff; {agent.email} works in an outsourced unit.",
            code="role_not_for_outsourced",
        )


def grant_role(db: Session, principal: Principal, agent_id: int, role_id: int) -> Agent:
    agent, role = get_agent(db, agent_id), get_role(db, role_id)
    _check_grant(principal, agent, role)
    if role not in agent.roles:
        db.add(
            AgentRole(
                agent_id=agent.id, role_id=role.id, granted_by=principal.actor, granted_at=utcnow()
            )
        )
        db.flush()
        db.refresh(agent)
        access_changed(
            db, principal, "agent.role_granted", f"agent:{agent.id}", after={"role": role.key}
        )
    return agent


def revoke_role(db: Session, principal: Principal, agent_id: int, role_id: int) -> Agent:
    agent, role = get_agent(db, agent_id), get_role(db, role_id)
    if agent.id == principal.agent_id:
        raise PermissionDenied("You cannot change your own roles.", code="self_management")
    require_agent_in_scope(principal, AGENTS_MANAGE, agent)
    require_rank_below_own(principal, role.rank)
    link = db.get(AgentRole, (agent.id, role.id))
    if link is not None:
        db.delete(link)
        db.flush()
        db.refresh(agent)
        access_changed(
            db, principal, "agent.role_revoked", f"agent:{agent.id}", before={"role": role.key}
        )
    return agent


def set_working_status(db: Session, principal: Principal, status: str) -> Agent:
    if principal.agent_id is None:
        raise PermissionDenied("Only agents have a working status.", code="not_an_agent")
    agent = get_agent(db, principal.agent_id)
    agent.working_status = status
    db.flush()
    return agent
