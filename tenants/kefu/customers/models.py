"""Customer profiles (tenant schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kefu.database import TenantBase, bigint_pk, created_at_column, updated_at_column


class Customer(TenantBase):
    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_emails", "emails", postgresql_using="gin"),
        Index("ix_customers_phones", "phones", postgresql_using="gin"),
        Index("ix_customers_tags", "tags", postgresql_using="gin"),
        Index("ix_customers_created_at_id", "created_at", "id"),
        Index("ix_customers_updated_at_id", "updated_at", "id"),
        Index("ix_customers_name_id", "name", "id"),
    )

    id: Mapped[int] = bigint_pk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    # Stored normalised: emails lower-cased, phones without separators.
    emails: Mapped[list[str]] = mapped_column(ARRAY(String(320)), nullable=False, default=list)
    phones: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False, default=list)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), nullable=False, default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    vip_level: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    external_ids: Mapped[list[CustomerExternalId]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="CustomerExternalId.id",
    )


class CustomerExternalId(TenantBase):
    """The customer's id in another system (order system, marketplace, old vendor)."""

    __tablename__ = "customer_external_ids"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = bigint_pk()
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    source: Mapped[str] = mapped_column(String(50), nullable=False)
    external_id: Mapped[str] = mapped_column(String(200), nullable=False)

    customer: Mapped[Customer] = relationship(back_populates="external_ids")


class CustomerExport(TenantBase):
    """A CSV export of every customer, produced by a background job."""

    __tablename__ = "customer_exports"

    id: Mapped[int] = bigint_pk()
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    row_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    file_name: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(500))
    requested_by: Mapped[str] = mapped_column(String(320), nullable=False)
    # Requested by someone without customers.view_pii: contact details are masked.
    masked: Mapped[bool] = mapped_column(nullable=False, default=False, server_default="false")
    created_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
