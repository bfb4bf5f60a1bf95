"""Platform API: support engineers' time-limited access and the audit log."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from kefu import audit
from kefu.access import accounts, support
from kefu.access.schemas import (
    AuditEventSchema,
    AuditQuerySchema,
    SupportGrantCreateSchema,
    SupportGrantSchema,
)
from kefu.api.errors import ValidationFailed
from kefu.request_context import current_actor, require_platform_role
from kefu.tenancy.service import get_tenant

blp = Blueprint(
    "platform_access",
    __name__,
    description="Support engineers' access to tenants, and the audit log.",
)
SECURITY = [{"BearerToken": []}]


@blp.route("/tenants/<slug>/support-grants")
class SupportGrantsView(MethodView):
    @blp.response(200, SupportGrantSchema(many=True))
    @blp.doc(security=SECURITY)
    def get(self, slug: str) -> list[Any]:
        """List support grants of a tenant"""
        require_platform_role()
        return support.list_grants(g.db, get_tenant(g.db, slug))

    @blp.arguments(SupportGrantCreateSchema)
    @blp.response(201, SupportGrantSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any], slug: str) -> Any:
        """Give a platform support engineer read-only access to a tenant for some hours"""
        require_platform_role("owner", "admin")
        account = accounts.account_by_email(g.db, data["email"])
        if account is None:
            raise ValidationFailed("email", "no platform account has this email")
        return support.grant_support_access(
            g.db,
            tenant=get_tenant(g.db, slug),
            account=account,
            hours=data["hours"],
            reason=data["reason"],
            actor=current_actor(),
        )


@blp.route("/tenants/<slug>/support-grants/<int:grant_id>")
class SupportGrantView(MethodView):
    @blp.response(200, SupportGrantSchema)
    @blp.doc(security=SECURITY)
    def delete(self, slug: str, grant_id: int) -> Any:
        """Revoke a support grant"""
        require_platform_role("owner", "admin")
        return support.revoke_grant(
            g.db, tenant=get_tenant(g.db, slug), grant_id=grant_id, actor=current_actor()
        )


@blp.route("/audit")
class AuditView(MethodView):
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditEventSchema(many=True))
    @blp.doc(security=SECURITY)
    def get(self, filters: dict[str, Any]) -> list[Any]:
        """Query the audit log (newest first)"""
        require_platform_role()
        return audit.query_events(g.db, filters)
