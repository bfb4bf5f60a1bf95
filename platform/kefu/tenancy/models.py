"""The tenant registry (shared schema)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, String
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from kefu.database import (
    SharedBase,
    bigint_pk,
    created_at_column,
    schema_for_slug,
    updated_at_column,
)


class TenantStatus(enum.StrEnum):
    active = "active"
    suspended = "suspended"
    archived = "archived"


class Tenant(SharedBase):
    __tablename__ = "tenants"

    id: Mapped[int] = bigint_pk()
    slug: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[TenantStatus] = mapped_column(
        Enum(TenantStatus, name="tenant_status", native_enum=False, length=16),
        nullable=False,
        default=TenantStatus.active,
    )
    modules: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False, default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    # The tenant schema's Alembic revision as last written by provisioning or
    # `kefu db upgrade`; the schema's own alembic_version table is the truth.
    schema_revision: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    @property
    def schema(self) -> str:
        return schema_for_slug(self.slug)
