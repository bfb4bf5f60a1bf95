"""flask-smorest customisation in one place: the Api, its error rendering and
OpenAPI metadata. Blueprints elsewhere use plain `flask_smorest.Blueprint`.
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow
from flask import Flask, jsonify
from flask_smorest import Api as SmorestApi
from werkzeug.exceptions import HTTPException

from kefu.api.errors import HTTP_CODES, ApiError

log = logging.getLogger(__name__)


class ErrorSchema(marshmallow.Schema):
    """Documentation of the error body every endpoint may return."""

    code = marshmallow.fields.String(
        required=True, metadata={"description": "Stable machine-readable error code."}
    )
    message = marshmallow.fields.String(
        required=True, metadata={"description": "Human-readable explanation."}
    )
    errors = marshmallow.fields.Dict(
        metadata={"description": "Field name -> list of problems, where the input was wrong."}
    )


def _flatten_webargs_messages(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs nests problems by location ({"json": {"name": [...]}}); callers want fields."""
    flat: dict[str, Any] = {}
    for location, problems in messages.items():
        if isinstance(problems, dict):
            for field_name, field_problems in problems.items():
                key = "body" if field_name == "_schema" else field_name
                flat[key] = field_problems
        else:
            flat[location] = problems
    return flat


def http_exception_body(error: HTTPException) -> tuple[dict[str, Any], int]:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    code = HTTP_CODES.get(status, "error")
    body: dict[str, Any] = {"code": code, "message": error.description or error.name}
    if messages:
        flat = _flatten_webargs_messages(messages)
        if status == 400 and "json" in messages and not isinstance(messages["json"], dict):
            body.update(code="invalid_json", message="The request body is not valid JSON.")
        else:
            fields_named = ", ".join(sorted(flat))
            body["message"] = f"Invalid input: {fields_named}."
        body["errors"] = flat
    if status >= 500:
        body["message"] = "An unexpected error occurred."
    if status == 413:
        body["message"] = "The request body is larger than the server accepts."
    return body, status


class Api(SmorestApi):
    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        app: Flask = self._app
        app.register_error_handler(HTTPException, self._render_http_exception)
        app.register_error_handler(ApiError, self._render_api_error)
        app.register_error_handler(marshmallow.ValidationError, self._render_validation_error)
        app.register_error_handler(Exception, self._render_unexpected)

    @staticmethod
    def _render_http_exception(error: HTTPException) -> Any:
        body, status = http_exception_body(error)
        response = jsonify(body)
        response.status_code = status
        headers = (getattr(error, "data", None) or {}).get("headers") or {}
        for name, value in headers.items():
            response.headers[name] = value
        return response

    @staticmethod
    def _render_api_error(error: ApiError) -> Any:
        response = jsonify(error.to_dict())
        response.status_code = error.status
        return response

    @staticmethod
    def _render_validation_error(error: marshmallow.ValidationError) -> Any:
        messages = error.messages if isinstance(error.messages, dict) else {"body": error.messages}
        response = jsonify(
            {
                "code": "validation_error",
                "message": f"Invalid input: {', '.join(sorted(messages))}.",
                "errors": messages,
            }
        )
        response.status_code = 422
        return response

    @staticmethod
    def _render_unexpected(error: Exception) -> Any:
        log.exception("unhandled error", exc_info=error)
        response = jsonify({"code": "internal_error", "message": "An unexpected error occurred."})
        response.status_code = 500
        return response


def init_api(app: Flask) -> Api:
    app.config.update(
        API_TITLE="Kefu",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        API_SPEC_OPTIONS={
            "info": {
                "description": (
                    "Tenant API under /api/v1: authenticate with a tenant API key "
                    "(`Authorization: Bearer kefu_...`) or an agent's tenant-scoped access "
                    "token. Platform API under /api/platform/v1: a platform account's "
                    "access token. Both tokens come from POST /api/auth/v1/login. Every "
                    "endpoint's required permission is in `x-permission`. Every error has "
                    "the shape {code, message, errors}."
                )
            },
            "components": {
                "securitySchemes": {
                    "TenantApiKey": {"type": "http", "scheme": "bearer"},
                    "BearerToken": {"type": "http", "scheme": "bearer"},
                }
            },
        },
    )
    return Api(app)
