"""`Idempotency-Key` support for integrator POSTs.

The key row is inserted at the start of the request, inside the tenant's unit of
work. A concurrent request with the same key blocks on the unique index until
the first commits, then replays its stored response; if the first rolls back,
the second proceeds as new. So a retried POST creates exactly one record.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Response, g, request
from sqlalchemy import Integer, String, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Mapped, mapped_column

from kefu.api.errors import ApiError, ValidationFailed
from kefu.database import TenantBase, created_at_column

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
IDEMPOTENCY_HEADER_DOC = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
    "description": (
        "Retry-safe POST: a repeated request with the same key and body returns the "
        "original response (with `Idempotent-Replayed: true`) instead of acting twice. "
        "Reusing a key with a different body is a 422 `idempotency_key_reused`."
    ),
}


class IdempotencyKey(TenantBase):
    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[Any | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()


def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.path.encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _replay(row: IdempotencyKey) -> Response:
    response = Response(json.dumps(row.body), status=row.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a POST view (outermost, above `@blp.response`)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ValidationFailed(HEADER, f"must be 1 to {MAX_KEY_LENGTH} characters")
        session = g.db
        fingerprint = _fingerprint()
        inserted = session.execute(
            insert(IdempotencyKey)
            .values(key=key, fingerprint=fingerprint)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(IdempotencyKey.key)
        ).scalar()
        if inserted is None:
            row = session.execute(
                select(IdempotencyKey).where(IdempotencyKey.key == key)
            ).scalar_one()
            if row.fingerprint != fingerprint:
                raise ApiError(
                    "This Idempotency-Key was used with a different request.",
                    code="idempotency_key_reused",
                    status=422,
                    errors={HEADER: ["was already used with a different method, path or body"]},
                )
            return _replay(row)
        response = view(*args, **kwargs)
        if isinstance(response, Response) and response.status_code < 400:
            row = session.get(IdempotencyKey, key)
            row.status_code = response.status_code
            row.body = response.get_json(silent=True)
        return response

    return wrapper
