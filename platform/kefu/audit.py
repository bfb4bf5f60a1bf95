"""The append-only audit log (shared schema): admin actions, role and
permission changes, PII reveals, logins and refused attempts.

The application only ever inserts; `before`/`after` snapshots sit in `details`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import has_request_context, request
from sqlalchemy import Engine, String, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from kefu.database import (
    SharedBase,
    after_commit,
    bigint_pk,
    created_at_column,
    shared_session,
    unit_of_work,
)


class AuditEvent(SharedBase):
    __tablename__ = "audit_events"

    id: Mapped[int] = bigint_pk()
    actor: Mapped[str] = mapped_column(String(320), nullable=False)
    action: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    tenant_slug: Mapped[str | None] = mapped_column(String(40), index=True)
    target: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    tenant_slug: str | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    address: str | None = None,
) -> None:
    session.add(
        AuditEvent(
            actor=actor,
            action=action,
            tenant_slug=tenant_slug,
            target=target,
            details=details or {},
            address=address,
        )
    )


def record_now(engine: Engine, **fields: Any) -> None:
    """Write an audit event in its own transaction (for refusals, whose request rolls back)."""
    with unit_of_work(shared_session(engine)) as session:
        record(session, **fields)


def record_after_commit(db: Session, engine: Engine, **fields: Any) -> None:
    """Audit a change made in a tenant unit of work once that unit commits
    (so a rolled-back change leaves no audit record)."""
    fields.setdefault("address", request_address())
    after_commit(db, lambda: record_now(engine, **fields))


def query_events(session: Session, filters: dict[str, Any]) -> list[AuditEvent]:
    """Newest first; `before_id` pages backwards; `action` may end in * for a prefix."""
    query = select(AuditEvent)
    if filters.get("tenant"):
        query = query.where(AuditEvent.tenant_slug == filters["tenant"])
    if filters.get("actor"):
        query = query.where(AuditEvent.actor == filters["actor"])
    action = filters.get("action")
    if action:
        if action.endswith("*"):
            query = query.where(AuditEvent.action.startswith(action[:-1], autoescape=True))
        else:
            query = query.where(AuditEvent.action == action)
    if filters.get("since"):
        query = query.where(AuditEvent.created_at >= filters["since"])
    if filters.get("until"):
        query = query.where(AuditEvent.created_at < filters["until"])
    if filters.get("before_id"):
        query = query.where(AuditEvent.id < filters["before_id"])
    limit = filters.get("limit", 100)
    return list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))


def request_address() -> str | None:
    return request.remote_addr if has_request_context() else None
