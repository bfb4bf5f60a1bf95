"""The browser UI: entry page, sign-in with a cookie session, the workspace
page listing the tenants an account works in, sign-out.

Forms are CSRF-protected: before sign-in by a double-submit token (a random
cookie echoed in the form), after sign-in by a token bound to the session.
The session cookie is HttpOnly, SameSite=Lax, and Secure in production.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from kefu.access import accounts, login, tokens
from kefu.access.models import Account
from kefu.api.errors import ApiError
from kefu.database import shared_session, unit_of_work
from kefu.platform_state import platform

blp = Blueprint("ui", __name__)
SESSION_COOKIE = "kefu_session"
PRE_CSRF_COOKIE = "kefu_csrf"


@blp.get("/")
def index() -> Any:
    modules = sorted(platform().modules.values(), key=lambda m: m.name)
    return render_template("index.html", modules=modules)


def _cookie_options() -> dict[str, Any]:
    return {"httponly": True, "samesite": "Lax", "secure": platform().settings.is_production}


def _check_pre_session_csrf() -> None:
    cookie = request.cookies.get(PRE_CSRF_COOKIE, "")
    form = request.form.get("csrf_token", "")
    if not cookie or not hmac.compare_digest(cookie, form):
        abort(400, description="The form expired or did not come from this site; reload it.")


@blp.get("/login")
def login_form() -> Any:
    token = secrets.token_urlsafe(32)
    response = Response(render_template("login.html", csrf_token=token, error=None))
    response.set_cookie(PRE_CSRF_COOKIE, token, **_cookie_options())
    return response


@blp.post("/login")
def login_submit() -> BaseResponse:
    _check_pre_session_csrf()
    state = platform()
    with unit_of_work(shared_session(state.engine)) as session:
        try:
            account = login.authenticate(
                session,
                state.redis,
                email=request.form.get("email", ""),
                password=request.form.get("password", ""),
                address=request.remote_addr,
                limits=state.settings.login_limits,
            )
        except ApiError as error:
            session.rollback()
            token = request.cookies.get(PRE_CSRF_COOKIE, "")
            page = render_template(
                "login.html",
                csrf_token=token,
                error=error.message,
                email=request.form.get("email", ""),
            )
            return Response(page, status=error.status)
        secret = tokens.issue_session(session, account, request.remote_addr)
    response = redirect(url_for("ui.workspace"))
    response.set_cookie(
        SESSION_COOKIE, secret, max_age=int(tokens.SESSION_TTL.total_seconds()), **_cookie_options()
    )
    response.delete_cookie(PRE_CSRF_COOKIE)
    return response


def _session_account(session: Any) -> tuple[Account, str] | None:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    try:
        return tokens.resolve(session, secret, "session").account, secret
    except ApiError:
        return None


@blp.get("/workspace")
def workspace() -> BaseResponse | str:
    state = platform()
    with shared_session(state.engine) as session:
        found = _session_account(session)
        if found is None:
            return redirect(url_for("ui.login_form"))
        account, secret = found
        tenants = [m.tenant for m in accounts.memberships(session, account.id)]
        return render_template(
            "workspace.html",
            account=account,
            tenants=tenants,
            csrf_token=tokens.csrf_token(state.settings.secret_key, secret),
        )


@blp.post("/logout")
def logout() -> BaseResponse:
    state = platform()
    with unit_of_work(shared_session(state.engine)) as session:
        found = _session_account(session)
        if found is not None:
            _, secret = found
            if not tokens.csrf_valid(
                state.settings.secret_key, secret, request.form.get("csrf_token")
            ):
                abort(400, description="Missing or wrong CSRF token.")
            row = tokens.lookup(session, secret, "session")
            tokens.revoke_family(session, row.family)
    response = redirect(url_for("ui.login_form"))
    response.delete_cookie(SESSION_COOKIE)
    return response
