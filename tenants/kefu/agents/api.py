"""Tenant API: agents, organisation units, roles, and the tenant's audit log."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from kefu import audit
from kefu.access.authz import PUBLIC, current_principal, requires
from kefu.access.schemas import AuditEventSchema, AuditQuerySchema
from kefu.agents.schemas import (
    AgentInviteSchema,
    AgentListArgsSchema,
    AgentMoveSchema,
    AgentSchema,
    AgentUpdateSchema,
    PrincipalSchema,
    RoleCreateSchema,
    RoleSchema,
    RoleWriteSchema,
    TeamTemplateSchema,
    UnitCreateSchema,
    UnitSchema,
    UnitUpdateSchema,
    WorkingStatusSchema,
)
from kefu.agents.service import agents, org, roles, templates
from kefu.database import shared_session
from kefu.platform_state import platform

blp = Blueprint("agents", __name__, description="Agents, organisation units and roles.")
SECURITY = [{"TenantApiKey": []}, {"BearerToken": []}]


def _catalogue() -> list[str]:
    return platform().catalogue


@blp.route("/me")
class MeView(MethodView):
    @requires(PUBLIC)
    @blp.response(200, PrincipalSchema)
    @blp.doc(security=SECURITY)
    def get(self) -> Any:
        """My effective permissions in this tenant, each with its scope"""
        return current_principal()


@blp.route("/me/status")
class MyStatusView(MethodView):
    @requires(PUBLIC)
    @blp.arguments(WorkingStatusSchema)
    @blp.response(200, AgentSchema)
    @blp.doc(security=SECURITY)
    def put(self, data: dict[str, Any]) -> Any:
        """Set my working status (online, away, offline)"""
        return agents.set_working_status(g.db, current_principal(), data["working_status"])


@blp.route("")
class AgentsView(MethodView):
    @requires("agents.view")
    @blp.arguments(AgentListArgsSchema, location="query")
    @blp.response(200, AgentSchema(many=True))
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> Any:
        """List the agents within my scope"""
        return agents.list_agents(g.db, current_principal(), args)

    @requires("agents.manage")
    @blp.arguments(AgentInviteSchema)
    @blp.response(201, AgentSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> Any:
        """Invite an agent (creates the account if the email is new)"""
        return agents.invite_agent(g.db, current_principal(), data)


@blp.route("/<int:agent_id>")
class AgentView(MethodView):
    @requires("agents.view")
    @blp.response(200, AgentSchema)
    @blp.doc(security=SECURITY)
    def get(self, agent_id: int) -> Any:
        """Show an agent"""
        return agents.get_visible_agent(g.db, current_principal(), agent_id)

    @requires("agents.manage")
    @blp.arguments(AgentUpdateSchema)
    @blp.response(200, AgentSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], agent_id: int) -> Any:
        """Update an agent's profile, or deactivate them"""
        return agents.update_agent(g.db, current_principal(), agent_id, data)


@blp.route("/<int:agent_id>/move")
class AgentMoveView(MethodView):
    @requires("agents.manage")
    @blp.arguments(AgentMoveSchema)
    @blp.response(200, AgentSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any], agent_id: int) -> Any:
        """Move an agent to another unit (audited)"""
        return agents.move_agent(g.db, current_principal(), agent_id, data["unit_id"])


@blp.route("/<int:agent_id>/roles/<int:role_id>")
class AgentRoleView(MethodView):
    @requires("agents.manage")
    @blp.response(200, AgentSchema)
    @blp.doc(security=SECURITY)
    def put(self, agent_id: int, role_id: int) -> Any:
        """Grant a role (ranked below your own highest role)"""
        return agents.grant_role(g.db, current_principal(), agent_id, role_id)

    @requires("agents.manage")
    @blp.response(200, AgentSchema)
    @blp.doc(security=SECURITY)
    def delete(self, agent_id: int, role_id: int) -> Any:
        """Revoke a role"""
        return agents.revoke_role(g.db, current_principal(), agent_id, role_id)


@blp.route("/units")
class UnitsView(MethodView):
    @requires("org.view")
    @blp.response(200, UnitSchema(many=True))
    @blp.doc(security=SECURITY)
    def get(self) -> Any:
        """List the organisation units within my scope"""
        return org.list_units(g.db, current_principal())

    @requires("org.manage")
    @blp.arguments(UnitCreateSchema)
    @blp.response(201, UnitSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a department, team or group"""
        return org.create_unit(g.db, current_principal(), data)


@blp.route("/units/<int:unit_id>")
class UnitView(MethodView):
    @requires("org.manage")
    @blp.arguments(UnitUpdateSchema)
    @blp.response(200, UnitSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], unit_id: int) -> Any:
        """Rename a unit or change its kind or vendor"""
        return org.update_unit(g.db, current_principal(), unit_id, data)

    @requires("org.manage")
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, unit_id: int) -> None:
        """Delete an empty unit"""
        org.delete_unit(g.db, current_principal(), unit_id)


@blp.route("/units/copy")
class UnitCopyView(MethodView):
    @requires("org.manage")
    @blp.arguments(TeamTemplateSchema)
    @blp.response(201, UnitSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> Any:
        """Copy a unit with its sub-units (a team template) under another unit"""
        return templates.copy_team_within(g.db, current_principal(), data)


@blp.route("/roles")
class RolesView(MethodView):
    @requires("agents.view")
    @blp.response(200, RoleSchema(many=True))
    @blp.doc(security=SECURITY)
    def get(self) -> Any:
        """List roles, highest rank first"""
        return roles.list_roles(g.db)

    @requires("roles.manage")
    @blp.arguments(RoleCreateSchema)
    @blp.response(201, RoleSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a role (ranked below yours, with permissions you hold)"""
        return roles.create_role(g.db, current_principal(), data, _catalogue())


@blp.route("/roles/<int:role_id>")
class RoleView(MethodView):
    @requires("roles.manage")
    @blp.arguments(RoleWriteSchema)
    @blp.response(200, RoleSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], role_id: int) -> Any:
        """Edit a role ranked below yours"""
        return roles.update_role(g.db, current_principal(), role_id, data, _catalogue())

    @requires("roles.manage")
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, role_id: int) -> None:
        """Delete a role nobody holds"""
        roles.delete_role(g.db, current_principal(), role_id)


@blp.route("/audit")
class TenantAuditView(MethodView):
    @requires("audit.view")
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditEventSchema(many=True))
    @blp.doc(security=SECURITY)
    def get(self, filters: dict[str, Any]) -> Any:
        """This tenant's audit log (newest first)"""
        with shared_session(platform().engine) as session:
            return audit.query_events(session, {**filters, "tenant": g.tenant.slug})
