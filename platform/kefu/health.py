"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import func, or_, select, text

from kefu.database import shared_session
from kefu.platform_state import platform
from kefu.schema.alembic import head_revision, schema_revision
from kefu.tenancy.models import Tenant

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz() -> Any:
    return jsonify({"status": "ok"})


def _check_database(checks: dict[str, Any]) -> None:
    state = platform()
    migrations = state.settings.migrations_dir
    with state.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        shared_rev = schema_revision(connection, "kefu_platform")
    shared_head = head_revision(migrations, "shared")
    if shared_rev != shared_head:
        checks["migrations"] = f"shared schema at {shared_rev}, head is {shared_head}"
        return
    tenant_head = head_revision(migrations, "tenant")
    with shared_session(state.engine) as session:
        behind = session.scalar(
            select(func.count(Tenant.id)).where(
                or_(Tenant.schema_revision.is_(None), Tenant.schema_revision != tenant_head)
            )
        )
    checks["migrations"] = "ok" if not behind else f"{behind} tenant schema(s) behind {tenant_head}"


@blp.get("/readyz")
def readyz() -> Any:
    checks: dict[str, Any] = {}
    try:
        _check_database(checks)
    except Exception as exc:  # any failure means not ready; say which
        checks.setdefault("database", f"error: {type(exc).__name__}")
    try:
        platform().redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values()) and len(checks) == 3
    response = jsonify({"status": "ready" if ready else "not_ready", "checks": checks})
    response.status_code = 200 if ready else 503
    return response
