"""Organisation tree, agent profiles and roles (tenant schema).

Agents reference their shared-schema account by `account_id` without a foreign
key: tenant schemas never point outside themselves.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kefu.database import TenantBase, bigint_pk, created_at_column, updated_at_column

UNIT_KINDS = ("department", "team", "group")
SOURCINGS = ("in_house", "outsourced")
LEVELS = ("trainee", "agent", "senior", "lead", "supervisor")
WORKING_STATUSES = ("online", "away", "offline")
SCOPES = ("own", "unit", "subtree", "tenant")


class OrgUnit(TenantBase):
    __tablename__ = "org_units"
    __table_args__ = (
        Index("ix_org_units_path", "path", postgresql_ops={"path": "text_pattern_ops"}),
    )

    id: Mapped[int] = bigint_pk()
    parent_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("org_units.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False, default="team")
    sourcing: Mapped[str] = mapped_column(String(20), nullable=False, default="in_house")
    vendor: Mapped[str | None] = mapped_column(String(200))
    # Materialised path of ids, "/1/4/9/": a subtree is one prefix match.
    path: Mapped[str] = mapped_column(String(1000), nullable=False, default="/")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Role(TenantBase):
    __tablename__ = "roles"

    id: Mapped[int] = bigint_pk()
    key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    scope: Mapped[str] = mapped_column(String(16), nullable=False)
    permissions: Mapped[list[str]] = mapped_column(ARRAY(String(100)), nullable=False, default=list)
    for_outsourced: Mapped[bool] = mapped_column(nullable=False, default=False)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Agent(TenantBase):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("account_id"), Index("ix_agents_unit_id", "unit_id"))

    id: Mapped[int] = bigint_pk()
    account_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    level: Mapped[str] = mapped_column(String(40), nullable=False, default="agent")
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False, default=list)
    languages: Mapped[list[str]] = mapped_column(ARRAY(String(16)), nullable=False, default=list)
    max_concurrent: Mapped[int] = mapped_column(Integer, nullable=False, default=5)
    working_status: Mapped[str] = mapped_column(String(16), nullable=False, default="offline")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    unit_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("org_units.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    unit: Mapped[OrgUnit | None] = relationship(lazy="joined")
    roles: Mapped[list[Role]] = relationship(
        secondary="agent_roles", lazy="selectin", order_by="Role.rank.desc()"
    )


class AgentRole(TenantBase):
    __tablename__ = "agent_roles"

    agent_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    granted_by: Mapped[str] = mapped_column(String(320), nullable=False)
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
