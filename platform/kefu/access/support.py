"""Time-limited access of platform support engineers to a tenant."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu import audit
from kefu.access.models import Account, SupportGrant
from kefu.api.errors import NotFound, ValidationFailed
from kefu.database import utcnow
from kefu.tenancy.models import Tenant

MAX_GRANT = timedelta(days=7)


def grant_support_access(
    session: Session, *, tenant: Tenant, account: Account, hours: int, reason: str, actor: str
) -> SupportGrant:
    if account.platform_role is None:
        raise ValidationFailed("email", "is not a platform account")
    if not 0 < hours <= MAX_GRANT.total_seconds() / 3600:
        raise ValidationFailed(
            "hours", f"must be between 1 and {int(MAX_GRANT.total_seconds() // 3600)}"
        )
    grant = SupportGrant(
        account_id=account.id,
        tenant_id=tenant.id,
        reason=reason,
        granted_by=actor,
        expires_at=utcnow() + timedelta(hours=hours),
    )
    session.add(grant)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="support_access.granted",
        tenant_slug=tenant.slug,
        target=f"account:{account.id}",
        details={"hours": hours, "reason": reason},
    )
    return grant


def active_grant(session: Session, account_id: int, tenant_id: int) -> SupportGrant | None:
    now = utcnow()
    return session.scalar(
        select(SupportGrant).where(
            SupportGrant.account_id == account_id,
            SupportGrant.tenant_id == tenant_id,
            SupportGrant.revoked_at.is_(None),
            SupportGrant.expires_at > now,
        )
    )


def list_grants(session: Session, tenant: Tenant) -> list[SupportGrant]:
    query = select(SupportGrant).where(SupportGrant.tenant_id == tenant.id)
    return list(session.scalars(query.order_by(SupportGrant.id.desc())))


def revoke_grant(session: Session, *, tenant: Tenant, grant_id: int, actor: str) -> SupportGrant:
    grant = session.get(SupportGrant, grant_id)
    if grant is None or grant.tenant_id != tenant.id:
        raise NotFound(f"Support grant {grant_id} does not exist.", code="grant_not_found")
    if grant.revoked_at is None:
        grant.revoked_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="support_access.revoked",
            tenant_slug=tenant.slug,
            target=f"grant:{grant_id}",
        )
    return grant
