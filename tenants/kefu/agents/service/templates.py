"""Team templates: copy a unit and its sub-units (and the roles its agents hold)
to stand up a new business line's minimum service team in one call."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.access.authz import Principal
from kefu.agents.models import Agent, AgentRole, OrgUnit, Role
from kefu.agents.service.changes import access_changed
from kefu.agents.service.org import get_unit
from kefu.agents.service.scopes import require_unit_in_scope


def _subtree(db: Session, root: OrgUnit) -> list[OrgUnit]:
    query = select(OrgUnit).where(OrgUnit.path.startswith(root.path, autoescape=True))
    return list(db.scalars(query.order_by(OrgUnit.path)))


def _roles_used(db: Session, units: list[OrgUnit]) -> list[Role]:
    unit_ids = [u.id for u in units]
    query = (
        select(Role)
        .join(AgentRole, AgentRole.role_id == Role.id)
        .join(Agent, Agent.id == AgentRole.agent_id)
        .where(Agent.unit_id.in_(unit_ids))
        .distinct()
    )
    return list(db.scalars(query))


def copy_tree(
    source_db: Session,
    target_db: Session,
    source_unit_id: int,
    target_parent: OrgUnit | None,
    name: str | None,
) -> OrgUnit:
    root = get_unit(source_db, source_unit_id)
    units = _subtree(source_db, root)
    copies: dict[int, OrgUnit] = {}
    for unit in units:
        parent = target_parent if unit.id == root.id else copies[unit.parent_id]
        copy = OrgUnit(
            name=(name or unit.name) if unit.id == root.id else unit.name,
            kind=unit.kind,
            sourcing=unit.sourcing,
            vendor=unit.vendor,
            parent_id=parent.id if parent else None,
        )
        target_db.add(copy)
        target_db.flush()
        copy.path = f"{parent.path if parent else '/'}{copy.id}/"
        copies[unit.id] = copy
    if source_db is not target_db:
        _copy_missing_roles(target_db, _roles_used(source_db, units))
    target_db.flush()
    return copies[root.id]


def _copy_missing_roles(target_db: Session, roles: list[Role]) -> None:
    existing = set(target_db.scalars(select(Role.key)))
    for role in roles:
        if role.key not in existing:
            target_db.add(
                Role(
                    key=role.key,
                    name=role.name,
                    description=role.description,
                    rank=role.rank,
                    scope=role.scope,
                    permissions=list(role.permissions),
                    for_outsourced=role.for_outsourced,
                )
            )


def copy_team_within(db: Session, principal: Principal, data: dict[str, Any]) -> OrgUnit:
    source = get_unit(db, data["source_unit_id"])
    require_unit_in_scope(principal, "org.manage", source)
    parent = get_unit(db, data["target_parent_id"]) if data.get("target_parent_id") else None
    require_unit_in_scope(principal, "org.manage", parent)
    copy = copy_tree(db, db, source.id, parent, data.get("name"))
    access_changed(
        db,
        principal,
        "org_unit.copied",
        f"org_unit:{copy.id}",
        after={"from": source.id, "parent_id": copy.parent_id},
    )
    return copy
