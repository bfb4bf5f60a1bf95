"""Append-only audit records for platform admin actions (shared schema).

The identity issue extends this into the full, queryable audit log; for now
every tenant lifecycle change, API key change and admin login is recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from kefu.database import SharedBase, bigint_pk, created_at_column


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
