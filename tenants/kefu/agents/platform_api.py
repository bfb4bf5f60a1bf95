"""Platform API of the agents module: platform admins appoint tenant admins and
copy team templates between tenants."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from kefu.agents.schemas import AgentSchema, TeamTemplateSchema, TenantAdminSchema, UnitSchema
from kefu.agents.service import agents, roles, templates
from kefu.agents.service.changes import access_changed
from kefu.api.errors import ValidationFailed
from kefu.database import tenant_session, unit_of_work
from kefu.platform_state import platform
from kefu.request_context import current_actor, require_platform_role, system_principal
from kefu.tenancy.service import get_tenant

blp = Blueprint(
    "platform_agents",
    __name__,
    description="Tenant admins and team templates, managed by platform admins.",
)
SECURITY = [{"BearerToken": []}]


@blp.route("/tenants/<slug>/admins")
class TenantAdminsView(MethodView):
    @blp.arguments(TenantAdminSchema)
    @blp.response(201, AgentSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any], slug: str) -> Any:
        """Appoint a tenant admin (invites the account if new)"""
        require_platform_role("owner", "admin")
        tenant = get_tenant(g.db, slug)
        principal = _acting_for(tenant.slug)
        with unit_of_work(tenant_session(platform().engine, tenant.schema)) as db:
            admin_role = roles.role_by_key(db, "tenant_admin")
            agent = agents.invite_agent(
                db,
                principal,
                {
                    "email": data["email"],
                    "display_name": data["display_name"],
                    "role_ids": [admin_role.id],
                    "level": "supervisor",
                },
            )
        return agent


@blp.route("/tenants/<slug>/team-templates")
class TeamTemplateView(MethodView):
    @blp.arguments(TeamTemplateSchema)
    @blp.response(201, UnitSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any], slug: str) -> Any:
        """Copy a unit tree of this tenant into another tenant (`target_tenant`)"""
        require_platform_role("owner", "admin")
        if not data.get("target_tenant"):
            raise ValidationFailed("target_tenant", "is required")
        engine = platform().engine
        source, target = get_tenant(g.db, slug), get_tenant(g.db, data["target_tenant"])
        with (
            unit_of_work(tenant_session(engine, source.schema)) as source_db,
            unit_of_work(tenant_session(engine, target.schema)) as target_db,
        ):
            parent_id = data.get("target_parent_id")
            parent = target_db.get(templates.OrgUnit, parent_id) if parent_id else None
            if parent_id and parent is None:
                raise ValidationFailed("target_parent_id", "no such unit in the target tenant")
            copy = templates.copy_tree(
                source_db, target_db, data["source_unit_id"], parent, data.get("name")
            )
            access_changed(
                target_db,
                _acting_for(target.slug),
                "org_unit.copied",
                f"org_unit:{copy.id}",
                after={"from_tenant": slug, "from_unit": data["source_unit_id"]},
            )
        return copy


def _acting_for(tenant_slug: str) -> Any:
    from dataclasses import replace

    return replace(system_principal(tenant_slug), actor=current_actor())
