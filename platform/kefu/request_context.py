"""One request, one principal, one tenant, one transaction.

`before_request` authenticates the caller and opens the unit of work for the
plane the URL belongs to:

* `/api/v1/...`: a tenant API key names exactly one tenant; its status and the
  module's enablement are checked; `g.db` is a TenantSession pinned to that
  tenant's schema.
* `/api/platform/v1/...`: a platform admin bearer token; `g.db` is a session on
  the shared schema.

`after_request` commits when the response is a success and rolls back
otherwise; `teardown_request` always closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request

from kefu.access import service as access
from kefu.access.models import Account
from kefu.api.errors import Forbidden, NotFound, Unauthorized
from kefu.database import shared_session, tenant_session
from kefu.platform_state import platform
from kefu.tenancy.models import Tenant, TenantStatus

TENANT_API_PREFIX = "/api/v1/"
PLATFORM_API_PREFIX = "/api/platform/v1/"
PUBLIC_PLATFORM_ENDPOINTS = frozenset({"platform_auth.TokenView"})


@dataclass(frozen=True)
class TenantContext:
    id: int
    slug: str
    schema: str
    settings: dict[str, Any]
    api_key_id: int | None = None

    @property
    def actor(self) -> str:
        return f"api_key:{self.api_key_id}" if self.api_key_id else "system"


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("X-Api-Key") or None


def check_tenant_usable(tenant: Tenant) -> None:
    if tenant.status == TenantStatus.suspended:
        raise Forbidden(f"Tenant {tenant.slug} is suspended.", code="tenant_suspended")
    if tenant.status == TenantStatus.archived:
        raise Forbidden(f"Tenant {tenant.slug} is archived.", code="tenant_archived")


def check_module_enabled(tenant: Tenant, module_name: str | None) -> None:
    if module_name is not None and module_name not in tenant.modules:
        raise NotFound(
            f"The {module_name} module is not enabled for this tenant.", code="module_not_enabled"
        )


def _open_tenant_request() -> None:
    secret = bearer_token()
    if not secret:
        raise Unauthorized(
            "Send a tenant API key: Authorization: Bearer kefu_...", code="invalid_api_key"
        )
    state = platform()
    with shared_session(state.engine) as session, session.begin():
        api_key = access.resolve_api_key(session, secret)
        tenant = api_key.tenant
    check_tenant_usable(tenant)
    check_module_enabled(tenant, state.module_of_blueprint(request.blueprint))
    g.tenant = TenantContext(
        id=tenant.id,
        slug=tenant.slug,
        schema=tenant.schema,
        settings=dict(tenant.settings),
        api_key_id=api_key.id,
    )
    g.db = tenant_session(state.engine, tenant.schema)


def _open_platform_request() -> None:
    state = platform()
    g.db = shared_session(state.engine)
    if request.endpoint in PUBLIC_PLATFORM_ENDPOINTS:
        return
    token = bearer_token()
    if not token:
        raise Unauthorized(
            "Send a platform token: Authorization: Bearer kefup_... "
            "(POST /api/platform/v1/auth/token).",
            code="invalid_token",
        )
    g.account = access.resolve_platform_token(g.db, token)


def open_request() -> None:
    if request.endpoint is None or request.endpoint.startswith("api-docs"):
        return
    if request.path.startswith(TENANT_API_PREFIX):
        _open_tenant_request()
    elif request.path.startswith(PLATFORM_API_PREFIX):
        _open_platform_request()


def finish_request(response: Response) -> Response:
    session = g.pop("db", None)
    if session is None:
        return response
    callbacks = g.pop("after_commit", [])
    try:
        if response.status_code < 400:
            session.commit()
        else:
            session.rollback()
            callbacks = []
    finally:
        session.close()
    for callback in callbacks:
        callback()
    return response


def abandon_request(error: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.rollback()
        session.close()


def current_actor() -> str:
    account: Account | None = g.get("account")
    if account is not None:
        return account.email
    tenant: TenantContext | None = g.get("tenant")
    return tenant.actor if tenant else "anonymous"


def client_address() -> str | None:
    return request.remote_addr


def init_request_context(app: Flask) -> None:
    app.before_request(open_request)
    app.after_request(finish_request)
    app.teardown_request(abandon_request)


def require_platform_role(*roles: str) -> Account:
    account: Account | None = g.get("account")
    if account is None:
        raise Unauthorized("Platform authentication required.", code="invalid_token")
    if roles and account.platform_role not in roles:
        raise Forbidden(
            f"This action needs the platform role {' or '.join(roles)}.",
            code="platform_role_required",
        )
    return account
