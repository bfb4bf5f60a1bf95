"""Organisation units: departments, teams and groups, in-house or outsourced."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kefu.access.authz import Principal
from kefu.agents.models import Agent, OrgUnit
from kefu.agents.service.changes import access_changed
from kefu.agents.service.scopes import filter_units, require_unit_in_scope
from kefu.api.errors import Conflict, NotFound, ValidationFailed

ORG_MANAGE = "org.manage"


def get_unit(db: Session, unit_id: int) -> OrgUnit:
    unit = db.get(OrgUnit, unit_id)
    if unit is None:
        raise NotFound(f"Unit {unit_id} does not exist.", code="unit_not_found")
    return unit


def snapshot(unit: OrgUnit) -> dict[str, Any]:
    return {
        "name": unit.name,
        "kind": unit.kind,
        "sourcing": unit.sourcing,
        "vendor": unit.vendor,
        "parent_id": unit.parent_id,
    }


def _check_sourcing(data: dict[str, Any], parent: OrgUnit | None) -> None:
    if data["sourcing"] == "outsourced" and not data.get("vendor"):
        raise ValidationFailed("vendor", "is required for an outsourced unit")
    if data["sourcing"] == "in_house" and data.get("vendor"):
        raise ValidationFailed("vendor", "is only for outsourced units")
    if parent is not None and parent.sourcing == "outsourced" and data["sourcing"] != "outsourced":
        raise ValidationFailed("sourcing", "units under an outsourced unit are outsourced too")


def create_unit(db: Session, principal: Principal, data: dict[str, Any]) -> OrgUnit:
    parent = get_unit(db, data["parent_id"]) if data.get("parent_id") else None
    require_unit_in_scope(principal, ORG_MANAGE, parent)
    _check_sourcing(data, parent)
    if principal.vendor is not None and data.get("vendor") != principal.vendor:
        raise ValidationFailed("vendor", "must be your own vendor company")
    unit = OrgUnit(
        name=data["name"].strip(),
        kind=data["kind"],
        sourcing=data["sourcing"],
        vendor=data.get("vendor"),
        parent_id=parent.id if parent else None,
    )
    db.add(unit)
    db.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    db.flush()
    access_changed(db, principal, "org_unit.created", f"org_unit:{unit.id}", after=snapshot(unit))
    return unit


def list_units(db: Session, principal: Principal) -> list[OrgUnit]:
    scope = principal.require("org.view")
    query = filter_units(select(OrgUnit), principal, scope).order_by(OrgUnit.path)
    return list(db.scalars(query))


def update_unit(db: Session, principal: Principal, unit_id: int, data: dict[str, Any]) -> OrgUnit:
    unit = get_unit(db, unit_id)
    require_unit_in_scope(principal, ORG_MANAGE, unit)
    before = snapshot(unit)
    if "name" in data:
        unit.name = data["name"].strip()
    if "kind" in data:
        unit.kind = data["kind"]
    if "vendor" in data:
        _check_sourcing({"sourcing": unit.sourcing, "vendor": data["vendor"]}, None)
        unit.vendor = data["vendor"]
    db.flush()
    access_changed(
        db,
        principal,
        "org_unit.updated",
        f"org_unit:{unit.id}",
        before=before,
        after=snapshot(unit),
    )
    return unit


def delete_unit(db: Session, principal: Principal, unit_id: int) -> None:
    unit = get_unit(db, unit_id)
    require_unit_in_scope(principal, ORG_MANAGE, unit)
    children = db.scalar(select(func.count()).where(OrgUnit.parent_id == unit.id))
    members = db.scalar(select(func.count()).where(Agent.unit_id == unit.id))
    if children or members:
        raise Conflict(
            f"Unit {unit_id} still has {children} sub-unit(s) and {members} agent(s).",
            code="unit_not_empty",
        )
    before = snapshot(unit)
    db.delete(unit)
    db.flush()
    access_changed(db, principal, "org_unit.deleted", f"org_unit:{unit_id}", before=before)
