"""The one error shape every Kefu API returns.

    {"code": "validation_error", "message": "...", "errors": {"field": ["..."]}}

`code` is stable and machine-readable; `message` is for people; `errors` maps
field names to problems where the input was wrong.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Raised by services and views; rendered by the Api's error handler."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.errors = errors

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class ValidationFailed(ApiError):
    status = 422
    code = "validation_error"

    def __init__(self, field: str, problem: str, *, message: str | None = None) -> None:
        super().__init__(message or f"{field}: {problem}", errors={field: [problem]})


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "precondition_required",
    429: "too_many_requests",
    500: "internal_error",
}
