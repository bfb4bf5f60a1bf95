"""Accounts, platform tokens and tenant API keys (shared schema).

Secrets are never stored: passwords as argon2 hashes, tokens and API keys as
SHA-256 digests (they are 256-bit random values, so a fast hash is safe and
lets every request be authenticated with one indexed lookup).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kefu.database import SharedBase, bigint_pk, created_at_column
from kefu.tenancy.models import Tenant


class Account(SharedBase):
    __tablename__ = "accounts"

    id: Mapped[int] = bigint_pk()
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    # Platform role: owner, admin or support; None for accounts that only work in tenants.
    platform_role: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class PlatformToken(SharedBase):
    __tablename__ = "platform_tokens"

    id: Mapped[int] = bigint_pk()
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(Account.id, ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = created_at_column()

    account: Mapped[Account] = relationship(lazy="joined")


class ApiKey(SharedBase):
    __tablename__ = "api_keys"

    id: Mapped[int] = bigint_pk()
    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(Tenant.id, ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_by: Mapped[str] = mapped_column(String(320), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    tenant: Mapped[Tenant] = relationship(lazy="joined")
