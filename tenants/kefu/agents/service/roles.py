"""Roles: bundles of permissions with a rank and a data scope.

The pyramid: nobody creates, edits or grants a role ranked at or above their
own highest role, nor one carrying a permission they do not hold themselves.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kefu.access.authz import PermissionDenied, Principal, Scope
from kefu.agents.defaults import DEFAULT_ROLES
from kefu.agents.models import AgentRole, Role
from kefu.agents.service.changes import access_changed
from kefu.agents.service.principals import expand
from kefu.api.errors import Conflict, NotFound, ValidationFailed

ROLES_MANAGE = "roles.manage"


def seed_default_roles(db: Session, catalogue: Collection[str]) -> None:
    for default in DEFAULT_ROLES:
        db.add(
            Role(
                key=default.key,
                name=default.name,
                description=default.description,
                rank=default.rank,
                scope=default.scope,
                permissions=[p for p in expand(default.permissions, catalogue) if p in catalogue],
                for_outsourced=default.for_outsourced,
            )
        )
    db.flush()


def get_role(db: Session, role_id: int) -> Role:
    role = db.get(Role, role_id)
    if role is None:
        raise NotFound(f"Role {role_id} does not exist.", code="role_not_found")
    return role


def role_by_key(db: Session, key: str) -> Role:
    role = db.scalar(select(Role).where(Role.key == key))
    if role is None:
        raise NotFound(f"Role {key} does not exist.", code="role_not_found")
    return role


def list_roles(db: Session) -> list[Role]:
    return list(db.scalars(select(Role).order_by(Role.rank.desc(), Role.id)))


def snapshot(role: Role) -> dict[str, Any]:
    return {
        "key": role.key,
        "name": role.name,
        "rank": role.rank,
        "scope": role.scope,
        "permissions": sorted(role.permissions),
        "for_outsourced": role.for_outsourced,
    }


def require_rank_below_own(principal: Principal, rank: int) -> None:
    if rank >= principal.max_rank:
        raise PermissionDenied(
            f"Rank {rank} is at or above your own highest role ({principal.max_rank}).",
            code="role_rank_too_high",
        )


def _require_permissions_held(
    principal: Principal, permissions: Collection[str], scope: str
) -> None:
    missing = sorted(p for p in permissions if not principal.can(p))
    if missing:
        raise PermissionDenied(
            "A role cannot carry permissions you do not hold: " + ", ".join(missing),
            code="permission_not_held",
        )
    wider = sorted(p for p in permissions if principal.scope_of(p) < Scope[scope])
    if wider:
        raise PermissionDenied(
            f"A role cannot reach wider ({scope}) than you do for: " + ", ".join(wider),
            code="permission_not_held",
        )


def _validate_permissions(permissions: Collection[str], catalogue: Collection[str]) -> list[str]:
    unknown = sorted(set(permissions) - set(catalogue))
    if unknown:
        raise ValidationFailed("permissions", f"unknown permission(s): {', '.join(unknown)}")
    return sorted(set(permissions))


def create_role(
    db: Session, principal: Principal, data: dict[str, Any], catalogue: Collection[str]
) -> Role:
    principal.require(ROLES_MANAGE)
    require_rank_below_own(principal, data["rank"])
    permissions = _validate_permissions(data["permissions"], catalogue)
    _require_permissions_held(principal, permissions, data["scope"])
    if db.scalar(select(Role.id).where(Role.key == data["key"])) is not None:
        raise Conflict(f"A role with key {data['key']} exists.", code="role_exists")
    role = Role(
        key=data["key"],
        name=data["name"],
        description=data.get("description", ""),
        rank=data["rank"],
        scope=data["scope"],
        permissions=permissions,
        for_outsourced=data.get("for_outsourced", False),
    )
    db.add(role)
    db.flush()
    access_changed(db, principal, "role.created", f"role:{role.key}", after=snapshot(role))
    return role


def update_role(
    db: Session,
    principal: Principal,
    role_id: int,
    data: dict[str, Any],
    catalogue: Collection[str],
) -> Role:
    principal.require(ROLES_MANAGE)
    role = get_role(db, role_id)
    require_rank_below_own(principal, role.rank)
    before = snapshot(role)
    if "rank" in data:
        require_rank_below_own(principal, data["rank"])
        role.rank = data["rank"]
    scope = data.get("scope", role.scope)
    permissions = _validate_permissions(data.get("permissions", role.permissions), catalogue)
    _require_permissions_held(principal, permissions, scope)
    role.scope, role.permissions = scope, permissions
    for name in ("name", "description", "for_outsourced"):
        if name in data:
            setattr(role, name, data[name])
    db.flush()
    access_changed(
        db, principal, "role.updated", f"role:{role.key}", before=before, after=snapshot(role)
    )
    return role


def delete_role(db: Session, principal: Principal, role_id: int) -> None:
    principal.require(ROLES_MANAGE)
    role = get_role(db, role_id)
    require_rank_below_own(principal, role.rank)
    holders = db.scalar(select(func.count()).where(AgentRole.role_id == role.id))
    if holders:
        raise Conflict(f"Role {role.key} is held by {holders} agent(s).", code="role_in_use")
    before = snapshot(role)
    db.delete(role)
    db.flush()
    access_changed(db, principal, "role.deleted", f"role:{before['key']}", before=before)
