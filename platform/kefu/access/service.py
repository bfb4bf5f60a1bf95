"""Platform admins, their bearer tokens, and tenant API keys.

No Flask here: callers pass the session and the acting principal. The identity
issue grows this into full accounts, memberships and roles.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kefu import audit
from kefu.access.models import Account, ApiKey, PlatformToken
from kefu.access.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from kefu.api.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from kefu.database import utcnow
from kefu.tenancy.models import Tenant

API_KEY_PREFIX = "kefu_"
PLATFORM_TOKEN_PREFIX = "kefup_"
PLATFORM_ROLES = ("owner", "admin", "support")
# How stale last_used_at may get before a request refreshes it (avoids a write per request).
LAST_USED_RESOLUTION = timedelta(minutes=5)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_platform_admin(
    session: Session, *, email: str, password: str, display_name: str, role: str = "admin"
) -> Account:
    email = normalise_email(email)
    if "@" not in email or len(email) > 320:
        raise ValidationFailed("email", "must be an email address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if role not in PLATFORM_ROLES:
        raise ValidationFailed("role", f"must be one of {', '.join(PLATFORM_ROLES)}")
    if session.scalar(select(Account.id).where(Account.email == email)) is not None:
        raise Conflict(f"An account with email {email} already exists.", code="account_exists")
    account = Account(
        email=email,
        display_name=display_name or email,
        password_hash=hash_password(password),
        platform_role=role,
    )
    session.add(account)
    session.flush()
    audit.record(session, actor="cli", action="platform_admin.created", target=email)
    return account


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime
    account: Account


def issue_platform_token(
    session: Session, *, email: str, password: str, ttl_seconds: int, address: str | None
) -> IssuedToken:
    account = session.scalar(select(Account).where(Account.email == normalise_email(email)))
    password_ok = verify_password(account.password_hash if account else None, password)
    if account is None or not password_ok or account.platform_role is None:
        raise Unauthorized("The email or password is not correct.", code="invalid_credentials")
    if account.status != "active":
        raise Unauthorized("The email or password is not correct.", code="invalid_credentials")
    token = PLATFORM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(seconds=ttl_seconds)
    session.add(
        PlatformToken(account_id=account.id, token_hash=digest(token), expires_at=expires_at)
    )
    account.last_login_at = utcnow()
    audit.record(session, actor=account.email, action="platform_admin.login", address=address)
    return IssuedToken(token=token, expires_at=expires_at, account=account)


def resolve_platform_token(session: Session, token: str) -> Account:
    row = session.scalar(select(PlatformToken).where(PlatformToken.token_hash == digest(token)))
    if row is None or row.expires_at <= utcnow() or row.account.status != "active":
        raise Unauthorized("The bearer token is missing, expired or revoked.", code="invalid_token")
    return row.account


def revoke_platform_token(session: Session, token: str) -> None:
    session.execute(
        PlatformToken.__table__.delete().where(PlatformToken.token_hash == digest(token))
    )


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    secret: str


def create_api_key(session: Session, *, tenant: Tenant, name: str, actor: str) -> CreatedApiKey:
    prefix = secrets.token_hex(4)
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey(
        tenant_id=tenant.id, name=name, prefix=prefix, key_hash=digest(secret), created_by=actor
    )
    session.add(api_key)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="api_key.created",
        tenant_slug=tenant.slug,
        target=f"api_key:{api_key.id}",
        details={"name": name, "prefix": prefix},
    )
    return CreatedApiKey(api_key=api_key, secret=secret)


def list_api_keys(session: Session, tenant: Tenant) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.tenant_id == tenant.id).order_by(ApiKey.id)
    return list(session.scalars(query))


def revoke_api_key(session: Session, *, tenant: Tenant, key_id: int, actor: str) -> ApiKey:
    api_key = session.get(ApiKey, key_id)
    if api_key is None or api_key.tenant_id != tenant.id:
        raise NotFound(
            f"API key {key_id} does not exist for this tenant.", code="api_key_not_found"
        )
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="api_key.revoked",
            tenant_slug=tenant.slug,
            target=f"api_key:{key_id}",
        )
    return api_key


def resolve_api_key(session: Session, secret: str) -> ApiKey:
    """The live key for `secret`, with its tenant loaded, or 401."""
    api_key = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest(secret)))
    if api_key is None or api_key.revoked_at is not None:
        raise Unauthorized("The API key is missing, unknown or revoked.", code="invalid_api_key")
    now = utcnow()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == api_key.id).values(last_used_at=now))
    return api_key
