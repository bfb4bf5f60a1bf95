"""Platform API: admin authentication."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from kefu.access import service
from kefu.access.schemas import TokenRequestSchema, TokenSchema
from kefu.platform_state import platform
from kefu.request_context import bearer_token, client_address

blp = Blueprint(
    "platform_auth",
    __name__,
    description="Platform admin authentication: exchange email and password for a bearer token.",
)


@blp.route("/token")
class TokenView(MethodView):
    @blp.arguments(TokenRequestSchema)
    @blp.response(201, TokenSchema)
    @blp.alt_response(401, description="Wrong email or password (`invalid_credentials`).")
    def post(self, credentials: dict[str, Any]) -> dict[str, Any]:
        """Log in as a platform admin"""
        issued = service.issue_platform_token(
            g.db,
            email=credentials["email"],
            password=credentials["password"],
            ttl_seconds=platform().settings.platform_token_ttl_seconds,
            address=client_address(),
        )
        return {
            "token": issued.token,
            "expires_at": issued.expires_at,
            "email": issued.account.email,
            "platform_role": issued.account.platform_role,
        }

    @blp.response(204)
    @blp.doc(security=[{"PlatformToken": []}])
    def delete(self) -> None:
        """Log out: revoke the bearer token used for this request"""
        token = bearer_token()
        if token:
            service.revoke_platform_token(g.db, token)
