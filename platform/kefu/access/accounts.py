"""Accounts (one per person, across tenants) and the membership index."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from kefu import audit
from kefu.access.models import Account, AuthToken, Membership
from kefu.access.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from kefu.api.errors import Conflict, Unauthorized, ValidationFailed
from kefu.database import after_commit, shared_session, tenant_session, unit_of_work, utcnow
from kefu.tenancy.models import Tenant

PLATFORM_ROLES = ("owner", "admin", "support")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _valid_email(email: str) -> str:
    email = normalise_email(email)
    local, at, domain = email.partition("@")
    if not local or not at or "." not in domain or len(email) > 320:
        raise ValidationFailed("email", "must be an email address")
    return email


def _valid_password(password: str, field: str = "password") -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(field, f"must be at least {MIN_PASSWORD_LENGTH} characters")
    return password


def account_by_email(session: Session, email: str) -> Account | None:
    return session.scalar(select(Account).where(Account.email == normalise_email(email)))


def create_platform_admin(
    session: Session,
    *,
    email: str,
    password: str,
    display_name: str,
    role: str = "admin",
    actor: str = "cli",
) -> Account:
    email = _valid_email(email)
    _valid_password(password)
    if role not in PLATFORM_ROLES:
        raise ValidationFailed("role", f"must be one of {', '.join(PLATFORM_ROLES)}")
    if account_by_email(session, email) is not None:
        raise Conflict(f"An account with email {email} already exists.", code="account_exists")
    account = Account(
        email=email,
        display_name=display_name or email,
        password_hash=hash_password(password),
        platform_role=role,
    )
    session.add(account)
    session.flush()
    audit.record(
        session, actor=actor, action="platform_admin.created", target=email, details={"role": role}
    )
    return account


def find_or_create_account(engine: Engine, *, email: str, display_name: str) -> Account:
    """An account for a newly invited agent; it gets an unusable random password
    until the person sets one through the password-reset flow."""
    email = _valid_email(email)
    with unit_of_work(shared_session(engine)) as session:
        account = account_by_email(session, email)
        if account is None:
            account = Account(
                email=email,
                display_name=display_name or email,
                password_hash=hash_password(secrets.token_urlsafe(32)),
            )
            session.add(account)
            session.flush()
        return account


def upsert_membership(engine: Engine, account_id: int, tenant_slug: str, agent_id: int) -> None:
    with unit_of_work(shared_session(engine)) as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == tenant_slug))
        session.execute(
            insert(Membership)
            .values(account_id=account_id, tenant_id=tenant_id, agent_id=agent_id)
            .on_conflict_do_update(
                index_elements=["account_id", "tenant_id"], set_={"agent_id": agent_id}
            )
        )


def add_membership_after_commit(
    db: Session, account_id: int, tenant_slug: str, agent_id: int
) -> None:
    """Index the membership once the tenant transaction that created the agent commits."""
    from kefu.platform_state import platform

    engine = platform().engine
    after_commit(db, lambda: upsert_membership(engine, account_id, tenant_slug, agent_id))


def membership_in(session: Session, account_id: int, tenant_id: int) -> Membership | None:
    return session.scalar(
        select(Membership).where(
            Membership.account_id == account_id, Membership.tenant_id == tenant_id
        )
    )


def memberships(session: Session, account_id: int) -> list[Membership]:
    query = select(Membership).where(Membership.account_id == account_id).order_by(Membership.id)
    return list(session.scalars(query))


def change_password(
    session: Session, account: Account, current: str, new: str, keep_family: str = ""
) -> None:
    if not verify_password(account.password_hash, current):
        raise Unauthorized("The current password is not correct.", code="invalid_credentials")
    account.password_hash = hash_password(_valid_password(new, "new_password"))
    account.password_changed_at = utcnow()
    # Every other sign-in ends; the caller's own token family stays.
    session.execute(
        update(AuthToken)
        .where(
            AuthToken.account_id == account.id,
            AuthToken.revoked_at.is_(None),
            AuthToken.family != keep_family,
        )
        .values(revoked_at=utcnow())
    )
    audit.record(
        session,
        actor=account.email,
        action="account.password_changed",
        target=f"account:{account.id}",
    )


def rebuild_memberships(engine: Engine, tenant_slug: str, schema: str) -> int:
    """Upsert a membership for every active agent of one tenant; drop stale ones.

    Reads the tenant's `agents` table with text SQL (the shared plane does not
    import tenant models); returns how many memberships the tenant has now.
    """
    with unit_of_work(tenant_session(engine, schema)) as db:
        rows = db.execute(text("SELECT id, account_id FROM agents WHERE status = 'active'")).all()
    with unit_of_work(shared_session(engine)) as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == tenant_slug))
        keep = {account_id for _, account_id in rows}
        session.execute(
            delete(Membership).where(
                Membership.tenant_id == tenant_id, Membership.account_id.not_in(keep or {0})
            )
        )
    for agent_id, account_id in rows:
        upsert_membership(engine, account_id, tenant_slug, agent_id)
    return len(rows)
