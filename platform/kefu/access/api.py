"""Sign-in API for every account (agents, platform admins, support engineers).

Tokens from /login without a tenant work on the platform API (platform
accounts) and for choosing a tenant; /tenant exchanges them for a pair scoped
to one tenant, which is what the tenant API accepts.
"""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from kefu.access import accounts, login, tokens
from kefu.access.models import Account, Membership
from kefu.access.schemas import (
    ChooseTenantSchema,
    LoginSchema,
    MeSchema,
    PasswordChangeSchema,
    PasswordResetConfirmSchema,
    PasswordResetRequestSchema,
    RefreshSchema,
    TokenPairSchema,
)
from kefu.access.support import active_grant
from kefu.api.errors import Forbidden
from kefu.database import tenant_session
from kefu.platform_state import platform
from kefu.request_context import bearer_token, check_tenant_usable, client_address
from kefu.tenancy.models import Tenant

blp = Blueprint(
    "auth",
    __name__,
    description="Sign in with email and password; tokens for the platform and tenant APIs.",
)
BEARER = [{"BearerToken": []}]


def _tenants_of(account: Account) -> list[Tenant]:
    return [m.tenant for m in accounts.memberships(g.db, account.id)]


def _active_agent(membership: Membership) -> bool:
    state = platform()
    if state.resolve_agent is None:
        return False
    db = tenant_session(state.engine, membership.tenant.schema)
    try:
        principal = state.resolve_agent(
            db, state.redis, membership.tenant.slug, membership.agent_id
        )
    finally:
        db.close()
    return principal is not None


def _tenant_for(account: Account, slug: str) -> Tenant:
    """The tenant the account may work in; membership is checked before anything
    else, so an outsider learns nothing about which slugs exist."""
    membership = next(
        (m for m in accounts.memberships(g.db, account.id) if m.tenant.slug == slug), None
    )
    if membership is not None and _active_agent(membership):
        tenant = membership.tenant
    else:
        tenant = g.db.scalar(select(Tenant).where(Tenant.slug == slug))
        supported = (
            tenant is not None
            and account.platform_role is not None
            and active_grant(g.db, account.id, tenant.id)
        )
        if not supported:
            raise Forbidden(f"You have no access to tenant {slug}.", code="not_a_member")
    check_tenant_usable(tenant)
    return tenant


def _pair_body(pair: tokens.TokenPair) -> dict[str, Any]:
    return {
        "token_type": "Bearer",
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_at": pair.expires_at,
        "tenant": pair.tenant,
        "account": pair.account,
        "tenants": _tenants_of(pair.account),
    }


def _signed_in_account() -> tuple[Account, Tenant | None]:
    row = tokens.resolve(g.db, bearer_token() or "", "access")
    return row.account, row.tenant


@blp.route("/login")
class LoginView(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(201, TokenPairSchema)
    @blp.alt_response(401, description="Wrong email or password (`invalid_credentials`).")
    @blp.alt_response(
        429, description="Rate limited or locked (`too_many_attempts`, `account_locked`)."
    )
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Sign in with email and password"""
        state = platform()
        account = login.authenticate(
            g.db,
            state.redis,
            email=data["email"],
            password=data["password"],
            address=client_address(),
            limits=state.settings.login_limits,
        )
        tenant = _tenant_for(account, data["tenant"]) if data["tenant"] else None
        return _pair_body(tokens.issue_pair(g.db, account, tenant, client_address()))


@blp.route("/tenant")
class ChooseTenantView(MethodView):
    @blp.arguments(ChooseTenantSchema)
    @blp.response(201, TokenPairSchema)
    @blp.doc(security=BEARER)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Exchange a sign-in token for a pair scoped to one tenant"""
        account, _ = _signed_in_account()
        tenant = _tenant_for(account, data["tenant"])
        return _pair_body(tokens.issue_pair(g.db, account, tenant, client_address()))


@blp.route("/refresh")
class RefreshView(MethodView):
    @blp.arguments(RefreshSchema)
    @blp.response(201, TokenPairSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Spend a refresh token for a new pair (reusing a spent one revokes the family)"""
        return _pair_body(tokens.refresh(g.db, data["refresh_token"], client_address()))


@blp.route("/logout")
class LogoutView(MethodView):
    @blp.response(204)
    @blp.doc(security=BEARER)
    def post(self) -> None:
        """Sign out: revoke this token and its refresh chain"""
        row = tokens.lookup(g.db, bearer_token() or "", "access")
        if row is not None:
            tokens.revoke_family(g.db, row.family)


@blp.route("/me")
class MeView(MethodView):
    @blp.response(200, MeSchema)
    @blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """Who am I, and which tenants can I work in"""
        account, tenant = _signed_in_account()
        return {"account": account, "tenant": tenant, "tenants": _tenants_of(account)}


@blp.route("/password")
class PasswordView(MethodView):
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    @blp.doc(security=BEARER)
    def post(self, data: dict[str, Any]) -> None:
        """Change my password"""
        row = tokens.resolve(g.db, bearer_token() or "", "access")
        accounts.change_password(
            g.db,
            row.account,
            data["current_password"],
            data["new_password"],
            keep_family=row.family,
        )


@blp.route("/password-reset")
class PasswordResetView(MethodView):
    @blp.arguments(PasswordResetRequestSchema)
    @blp.response(202)
    def post(self, data: dict[str, Any]) -> None:
        """Ask for a password-reset link (same answer whether the email exists or not)"""
        state = platform()
        login.request_password_reset(
            g.db,
            state.redis,
            data["email"],
            address=client_address(),
            limits=state.settings.login_limits,
            base_url=state.settings.base_url,
            log_link=not state.settings.is_production,
        )


@blp.route("/password-reset/confirm")
class PasswordResetConfirmView(MethodView):
    @blp.arguments(PasswordResetConfirmSchema)
    @blp.response(204)
    def post(self, data: dict[str, Any]) -> None:
        """Set a new password with a reset token (single use; ends every sign-in)"""
        login.reset_password(g.db, data["token"], data["new_password"])
