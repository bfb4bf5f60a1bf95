"""Platform API: tenants, their modules and their API keys."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from kefu.access import api_keys
from kefu.access.schemas import ApiKeyCreateSchema, ApiKeySchema, CreatedApiKeySchema
from kefu.api.errors import ValidationFailed
from kefu.modules import default_modules
from kefu.platform_state import platform
from kefu.request_context import current_actor, require_platform_role
from kefu.tenancy import service
from kefu.tenancy.models import Tenant
from kefu.tenancy.schemas import (
    TenantCreateSchema,
    TenantDeleteArgsSchema,
    TenantListArgsSchema,
    TenantSchema,
    TenantUpdateSchema,
)

blp = Blueprint(
    "platform_tenants",
    __name__,
    description="Tenants (business lines): provisioning, status, modules and API keys.",
)
SECURITY = [{"BearerToken": []}]
MANAGERS = ("owner", "admin")


def _known_modules() -> list[str]:
    return list(platform().modules)


@blp.route("")
class TenantsView(MethodView):
    @blp.arguments(TenantListArgsSchema, location="query")
    @blp.response(200, TenantSchema(many=True))
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> list[Tenant]:
        """List tenants"""
        require_platform_role()
        return service.list_tenants(g.db, args["status"])

    @blp.arguments(TenantCreateSchema)
    @blp.response(201, TenantSchema)
    @blp.alt_response(409, description="The slug is taken (`tenant_exists`).")
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> Tenant:
        """Provision a tenant: schema, tables and migration stamp in one transaction"""
        require_platform_role(*MANAGERS)
        spec = service.TenantSpec(
            slug=data["slug"],
            display_name=data["display_name"],
            modules=data["modules"] if data["modules"] is not None else default_modules(),
            settings=data["settings"],
        )
        state = platform()
        return service.create_tenant(
            state.engine,
            spec,
            known_modules=_known_modules(),
            migrations_dir=state.settings.migrations_dir,
            actor=current_actor(),
        )


@blp.route("/<slug>")
class TenantView(MethodView):
    @blp.response(200, TenantSchema)
    @blp.alt_response(404, description="No such tenant (`tenant_not_found`).")
    @blp.doc(security=SECURITY)
    def get(self, slug: str) -> Tenant:
        """Show a tenant"""
        require_platform_role()
        return service.get_tenant(g.db, slug)

    @blp.arguments(TenantUpdateSchema)
    @blp.response(200, TenantSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], slug: str) -> Tenant:
        """Rename a tenant, set its modules or merge settings"""
        require_platform_role(*MANAGERS)
        return service.update_tenant(
            g.db, slug, actor=current_actor(), known_modules=_known_modules(), **data
        )

    @blp.arguments(TenantDeleteArgsSchema, location="query")
    @blp.response(204)
    @blp.alt_response(409, description="The tenant is not archived (`tenant_not_archived`).")
    @blp.doc(security=SECURITY)
    def delete(self, args: dict[str, Any], slug: str) -> None:
        """Delete an archived tenant and drop its schema (`?confirm=<slug>`)"""
        require_platform_role("owner", "admin")
        if args["confirm"] != slug:
            raise ValidationFailed("confirm", "must equal the tenant's slug")
        service.delete_tenant(platform().engine, slug, actor=current_actor())


def _status_view(action: str, summary: str) -> type[MethodView]:
    class StatusView(MethodView):
        @blp.response(200, TenantSchema)
        @blp.alt_response(409, description="Not allowed from the current status.")
        @blp.doc(security=SECURITY, summary=summary)
        def post(self, slug: str) -> Tenant:
            require_platform_role(*MANAGERS)
            return service.change_status(g.db, slug, action, actor=current_actor())

    StatusView.__name__ = f"Tenant{action.title()}View"
    return StatusView


for _action, _summary in (
    ("suspend", "Suspend a tenant: its API answers 403 tenant_suspended"),
    ("resume", "Resume a suspended or archived tenant"),
    ("archive", "Archive a tenant (required before deletion)"),
):
    blp.route(f"/<slug>/{_action}", endpoint=f"tenant_{_action}")(_status_view(_action, _summary))


@blp.route("/<slug>/modules/<module>")
class TenantModuleView(MethodView):
    @blp.response(200, TenantSchema)
    @blp.doc(security=SECURITY)
    def put(self, slug: str, module: str) -> Tenant:
        """Enable a module for a tenant"""
        require_platform_role(*MANAGERS)
        return service.set_module_enabled(
            g.db, slug, module, True, actor=current_actor(), known_modules=_known_modules()
        )

    @blp.response(200, TenantSchema)
    @blp.doc(security=SECURITY)
    def delete(self, slug: str, module: str) -> Tenant:
        """Disable a module: its endpoints answer 404 module_not_enabled"""
        require_platform_role(*MANAGERS)
        return service.set_module_enabled(
            g.db, slug, module, False, actor=current_actor(), known_modules=_known_modules()
        )


@blp.route("/<slug>/api-keys")
class ApiKeysView(MethodView):
    @blp.response(200, ApiKeySchema(many=True))
    @blp.doc(security=SECURITY)
    def get(self, slug: str) -> list[Any]:
        """List a tenant's API keys (never the secrets)"""
        require_platform_role()
        return api_keys.list_api_keys(g.db, service.get_tenant(g.db, slug))

    @blp.arguments(ApiKeyCreateSchema)
    @blp.response(201, CreatedApiKeySchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any], slug: str) -> dict[str, Any]:
        """Create an API key; the secret is in this response only"""
        require_platform_role(*MANAGERS)
        tenant = service.get_tenant(g.db, slug)
        created = api_keys.create_api_key(
            g.db,
            tenant=tenant,
            name=data["name"],
            actor=current_actor(),
            scopes=data["scopes"],
            catalogue=platform().catalogue,
            expires_at=data["expires_at"],
        )
        return _created_key_body(created)


def _created_key_body(created: api_keys.CreatedApiKey) -> dict[str, Any]:
    fields = {name: getattr(created.api_key, name) for name in ApiKeySchema().fields}
    return {**fields, "key": created.secret}


@blp.route("/<slug>/api-keys/<int:key_id>/rotate")
class ApiKeyRotateView(MethodView):
    @blp.response(201, CreatedApiKeySchema)
    @blp.doc(security=SECURITY)
    def post(self, slug: str, key_id: int) -> dict[str, Any]:
        """Rotate an API key: a new secret; the old one works for 24 more hours"""
        require_platform_role(*MANAGERS)
        tenant = service.get_tenant(g.db, slug)
        created = api_keys.rotate_api_key(g.db, tenant=tenant, key_id=key_id, actor=current_actor())
        return _created_key_body(created)


@blp.route("/<slug>/api-keys/<int:key_id>")
class ApiKeyView(MethodView):
    @blp.response(200, ApiKeySchema)
    @blp.doc(security=SECURITY)
    def delete(self, slug: str, key_id: int) -> Any:
        """Revoke an API key"""
        require_platform_role(*MANAGERS)
        tenant = service.get_tenant(g.db, slug)
        return api_keys.revoke_api_key(g.db, tenant=tenant, key_id=key_id, actor=current_actor())
