"""Accounts, tokens, memberships, support grants and API keys (shared schema).

Secrets are never stored: passwords as argon2 hashes, tokens and API keys as
SHA-256 digests (they are 256-bit random values, so a fast hash is safe and
lets every request be authenticated with one indexed lookup).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
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
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class AuthToken(SharedBase):
    """A bearer token (access or refresh) or a browser session.

    `tenant_id` set: the token acts in that tenant only. Refresh tokens rotate;
    `family` ties a chain of them together so reuse of a spent one revokes all.
    """

    __tablename__ = "auth_tokens"

    id: Mapped[int] = bigint_pk()
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(Account.id, ondelete="CASCADE"), nullable=False, index=True
    )
    tenant_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey(Tenant.id, ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # access, refresh, session
    family: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()

    account: Mapped[Account] = relationship(lazy="joined")
    tenant: Mapped[Tenant | None] = relationship(lazy="joined")


class PasswordReset(SharedBase):
    __tablename__ = "password_resets"

    id: Mapped[int] = bigint_pk()
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(Account.id, ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class Membership(SharedBase):
    """Index of which tenants an account works in; the agent row in the tenant
    schema is the record (see `kefu access reindex`)."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("account_id", "tenant_id"),)

    id: Mapped[int] = bigint_pk()
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(Account.id, ondelete="CASCADE"), nullable=False
    )
    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(Tenant.id, ondelete="CASCADE"), nullable=False, index=True
    )
    agent_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = created_at_column()

    tenant: Mapped[Tenant] = relationship(lazy="joined")


class SupportGrant(SharedBase):
    """Time-limited, read-only access of a platform support engineer to one tenant."""

    __tablename__ = "support_grants"

    id: Mapped[int] = bigint_pk()
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(Account.id, ondelete="CASCADE"), nullable=False, index=True
    )
    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(Tenant.id, ondelete="CASCADE"), nullable=False
    )
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    granted_by: Mapped[str] = mapped_column(String(320), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()

    account: Mapped[Account] = relationship(lazy="joined")
    tenant: Mapped[Tenant] = relationship(lazy="joined")


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
    # Permission scopes (a subset of the catalogue); None: every permission.
    scopes: Mapped[list[str] | None] = mapped_column(ARRAY(String(100)))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replaced_by_id: Mapped[int | None] = mapped_column(BigInteger)

    tenant: Mapped[Tenant] = relationship(lazy="joined")
