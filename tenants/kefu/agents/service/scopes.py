"""Data scopes: which units and agents a principal's permission reaches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, false, or_

from kefu.access.authz import PermissionDenied, Principal, Scope
from kefu.agents.models import Agent, OrgUnit


def unit_reachable(principal: Principal, scope: Scope, unit: OrgUnit | None) -> bool:
    if principal.vendor is not None and (
        unit is None or unit.sourcing != "outsourced" or unit.vendor != principal.vendor
    ):
        return False  # an outsourced lead manages only their own vendor's units
    if scope == Scope.tenant:
        return True
    if unit is None or principal.unit_id is None:
        return False
    if scope == Scope.subtree:
        return unit.path.startswith(principal.unit_path or "\0")
    if scope == Scope.unit:
        return unit.id == principal.unit_id
    return False


def agent_reachable(principal: Principal, scope: Scope, agent: Agent) -> bool:
    if scope == Scope.own:
        return agent.id == principal.agent_id
    return agent.id == principal.agent_id or unit_reachable(principal, scope, agent.unit)


def require_agent_in_scope(principal: Principal, permission: str, agent: Agent) -> None:
    scope = principal.require(permission)
    if not agent_reachable(principal, scope, agent):
        raise PermissionDenied(
            f"Agent {agent.id} is outside the reach of your {permission} permission.",
            code="outside_scope",
        )


def require_unit_in_scope(principal: Principal, permission: str, unit: OrgUnit | None) -> None:
    scope = principal.require(permission)
    if not unit_reachable(principal, scope, unit):
        where = f"unit {unit.id}" if unit else "the top of the organisation"
        raise PermissionDenied(
            f"{where} is outside the reach of your {permission} permission.", code="outside_scope"
        )


def _vendor_condition(principal: Principal) -> Any:
    return (OrgUnit.sourcing == "outsourced") & (OrgUnit.vendor == principal.vendor)


def filter_units(query: Select[Any], principal: Principal, scope: Scope) -> Select[Any]:
    if principal.vendor is not None:
        query = query.where(_vendor_condition(principal))
    if scope == Scope.tenant:
        return query
    if principal.unit_id is None:
        return query.where(false())
    if scope == Scope.subtree:
        return query.where(OrgUnit.path.startswith(principal.unit_path or "\0", autoescape=True))
    return query.where(OrgUnit.id == principal.unit_id)


def filter_agents(query: Select[Any], principal: Principal, scope: Scope) -> Select[Any]:
    """Restrict an Agent query (joined to OrgUnit with an outer join) to the scope."""
    own = Agent.id == principal.agent_id
    if scope == Scope.own:
        return query.where(own)
    if principal.vendor is not None:
        query = query.where(or_(own, _vendor_condition(principal)))
    if scope == Scope.tenant:
        return query
    if principal.unit_id is None:
        return query.where(own)
    if scope == Scope.subtree:
        return query.where(
            or_(own, OrgUnit.path.startswith(principal.unit_path or "\0", autoescape=True))
        )
    return query.where(or_(own, Agent.unit_id == principal.unit_id))
