"""One request, one principal, one tenant, one transaction.

`before_request` authenticates the caller and opens the unit of work for the
plane the URL belongs to:

* `/api/v1/...`: the credential names exactly one tenant: a tenant API key, or
  an agent's tenant-scoped access token (or a platform support engineer's,
  with an active support grant). The tenant's status and the module's
  enablement are checked; `g.principal` carries the effective permissions;
  `g.db` is a TenantSession pinned to that tenant's schema.
* `/api/platform/v1/...`: an unscoped access token of a platform account;
  `g.db` is a session on the shared schema.
* `/api/auth/v1/...`: sign-in endpoints; `g.db` is a shared session.

`after_request` commits when the response is a success and rolls back
otherwise (follow-up work hangs on the session via `kefu.database.after_commit`);
a 403 is audited in its own transaction. `teardown_request` always closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request

from kefu import audit
from kefu.access import api_keys, tokens
from kefu.access.accounts import membership_in
from kefu.access.authz import Principal, Scope, full_access
from kefu.access.models import Account, ApiKey, AuthToken
from kefu.access.support import active_grant
from kefu.api.errors import Forbidden, NotFound, Unauthorized
from kefu.database import shared_session, tenant_session
from kefu.platform_state import platform
from kefu.tenancy.models import Tenant, TenantStatus

TENANT_API_PREFIX = "/api/v1/"
PLATFORM_API_PREFIX = "/api/platform/v1/"
AUTH_API_PREFIX = "/api/auth/v1/"


@dataclass(frozen=True)
class TenantContext:
    id: int
    slug: str
    schema: str
    settings: dict[str, Any]

    @property
    def actor(self) -> str:
        principal: Principal | None = g.get("principal")
        return principal.actor if principal else "system"


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


def api_key_principal(api_key: ApiKey, catalogue: list[str]) -> Principal:
    allowed = catalogue if api_key.scopes is None else api_key.scopes
    return Principal(
        kind="api_key",
        tenant_slug=api_key.tenant.slug,
        actor=f"api_key:{api_key.id}",
        permissions=dict.fromkeys(allowed, Scope.tenant),
    )


def support_principal(account: Account, tenant: Tenant, catalogue: list[str]) -> Principal:
    """Support engineers read; they never change data or see unmasked PII."""
    readable = [p for p in catalogue if p.endswith(".view") and p != "customers.view_pii"]
    return Principal(
        kind="support",
        tenant_slug=tenant.slug,
        actor=f"support:{account.email}",
        permissions=dict.fromkeys(readable, Scope.tenant),
        account_id=account.id,
    )


def _agent_principal(session: Any, token: AuthToken, catalogue: list[str]) -> Principal:
    state = platform()
    tenant = token.tenant
    membership = membership_in(session, token.account_id, tenant.id)
    if membership is not None and state.resolve_agent is not None:
        db = tenant_session(state.engine, tenant.schema)
        try:
            principal = state.resolve_agent(db, state.redis, tenant.slug, membership.agent_id)
        finally:
            db.close()
        if principal is not None:
            return principal
    if token.account.platform_role and active_grant(session, token.account_id, tenant.id):
        return support_principal(token.account, tenant, catalogue)
    raise Forbidden("You have no active access to this tenant.", code="not_a_member")


def _authenticate_tenant_request(secret: str) -> tuple[Tenant, Principal]:
    state = platform()
    catalogue = state.catalogue
    with shared_session(state.engine) as session, session.begin():
        if secret.startswith(api_keys.API_KEY_PREFIX):
            api_key = api_keys.resolve_api_key(session, secret)
            return api_key.tenant, api_key_principal(api_key, catalogue)
        token = tokens.resolve(session, secret, "access")
        if token.tenant is None:
            raise Forbidden(
                "This token is not scoped to a tenant; get one with POST /api/auth/v1/tenant.",
                code="token_not_scoped",
            )
        return token.tenant, _agent_principal(session, token, catalogue)


def _open_tenant_request() -> None:
    secret = bearer_token()
    if not secret:
        raise Unauthorized(
            "Send a tenant API key or an agent access token: Authorization: Bearer ...",
            code="invalid_api_key",
        )
    tenant, principal = _authenticate_tenant_request(secret)
    check_tenant_usable(tenant)
    state = platform()
    check_module_enabled(tenant, state.module_of_blueprint(request.blueprint))
    g.principal = principal
    g.tenant = TenantContext(
        id=tenant.id, slug=tenant.slug, schema=tenant.schema, settings=dict(tenant.settings)
    )
    g.db = tenant_session(state.engine, tenant.schema)


def _open_platform_request() -> None:
    g.db = shared_session(platform().engine)
    token = bearer_token()
    if not token:
        raise Unauthorized(
            "Send a platform access token: Authorization: Bearer kefua_... "
            "(POST /api/auth/v1/login).",
            code="invalid_token",
        )
    row = tokens.resolve(g.db, token, "access")
    if row.tenant_id is not None or row.account.platform_role is None:
        raise Unauthorized("This token is not a platform token.", code="invalid_token")
    g.account = row.account


def open_request() -> None:
    if request.endpoint is None or request.endpoint.startswith("api-docs"):
        return
    if request.path.startswith(TENANT_API_PREFIX):
        _open_tenant_request()
    elif request.path.startswith(PLATFORM_API_PREFIX):
        _open_platform_request()
    elif request.path.startswith(AUTH_API_PREFIX):
        g.db = shared_session(platform().engine)


def _audit_refusal(response: Response) -> None:
    actor = current_actor()
    if actor == "anonymous":
        return
    body = response.get_json(silent=True) or {}
    tenant = g.get("tenant")
    audit.record_now(
        platform().engine,
        actor=actor,
        action="access.denied",
        tenant_slug=tenant.slug if tenant else None,
        target=f"{request.method} {request.path}",
        details={"code": body.get("code"), "message": body.get("message")},
        address=request.remote_addr,
    )


def finish_request(response: Response) -> Response:
    session = g.pop("db", None)
    if response.status_code == 403:
        _audit_refusal(response)
    if session is None:
        return response
    try:
        if response.status_code < 400:
            session.commit()  # runs the session's after_commit follow-ups
        else:
            session.rollback()
    finally:
        session.close()
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
    principal: Principal | None = g.get("principal")
    return principal.actor if principal else "anonymous"


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


def system_principal(tenant_slug: str) -> Principal:
    """Full access for jobs and CLI commands acting on behalf of the platform."""
    return full_access("system", tenant_slug, "system", platform().catalogue)
