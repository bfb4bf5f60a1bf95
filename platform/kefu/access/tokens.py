"""Bearer tokens and browser sessions.

An access token lives an hour, a refresh token thirty days; refreshing spends
the refresh token and issues a new pair in the same family. Presenting a spent
refresh token again means it was stolen: the whole family is revoked.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kefu import audit
from kefu.access.models import Account, AuthToken
from kefu.access.secrets_util import digest, new_secret
from kefu.api.errors import Unauthorized
from kefu.database import shared_session, unit_of_work, utcnow
from kefu.tenancy.models import Tenant

ACCESS_PREFIX = "kefua_"
REFRESH_PREFIX = "kefur_"
SESSION_PREFIX = "kefus_"
ACCESS_TTL = timedelta(hours=1)
REFRESH_TTL = timedelta(days=30)
SESSION_TTL = timedelta(hours=12)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_at: datetime
    account: Account
    tenant: Tenant | None


def _store(
    session: Session,
    account: Account,
    tenant: Tenant | None,
    kind: str,
    family: str,
    ttl: timedelta,
    prefix: str,
    address: str | None,
) -> tuple[str, datetime]:
    secret = new_secret(prefix)
    expires_at = utcnow() + ttl
    session.add(
        AuthToken(
            account_id=account.id,
            tenant_id=tenant.id if tenant else None,
            kind=kind,
            family=family,
            token_hash=digest(secret),
            expires_at=expires_at,
            address=address,
        )
    )
    return secret, expires_at


def issue_pair(
    session: Session,
    account: Account,
    tenant: Tenant | None,
    address: str | None,
    family: str | None = None,
) -> TokenPair:
    family = family or secrets.token_hex(16)
    access, expires_at = _store(
        session, account, tenant, "access", family, ACCESS_TTL, ACCESS_PREFIX, address
    )
    refresh, _ = _store(
        session, account, tenant, "refresh", family, REFRESH_TTL, REFRESH_PREFIX, address
    )
    session.flush()
    return TokenPair(access, refresh, expires_at, account, tenant)


def issue_session(session: Session, account: Account, address: str | None) -> str:
    secret, _ = _store(
        session,
        account,
        None,
        "session",
        secrets.token_hex(16),
        SESSION_TTL,
        SESSION_PREFIX,
        address,
    )
    session.flush()
    return secret


def lookup(session: Session, secret: str, kind: str) -> AuthToken | None:
    row = session.scalar(select(AuthToken).where(AuthToken.token_hash == digest(secret)))
    if row is None or row.kind != kind:
        return None
    return row


def resolve(session: Session, secret: str, kind: str = "access") -> AuthToken:
    row = lookup(session, secret, kind)
    if (
        row is None
        or row.revoked_at is not None
        or row.expires_at <= utcnow()
        or row.account.status != "active"
    ):
        raise Unauthorized("The token is missing, expired or revoked.", code="invalid_token")
    return row


def revoke_family(session: Session, family: str) -> None:
    session.execute(
        update(AuthToken)
        .where(AuthToken.family == family, AuthToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def _spend(session: Session, row: AuthToken) -> bool:
    """Mark a refresh token used; False when a concurrent request spent it first.

    The conditional UPDATE takes the row lock, so of two simultaneous refreshes
    the second waits for the first to commit and then matches no row.
    """
    result = session.execute(
        update(AuthToken)
        .where(AuthToken.id == row.id, AuthToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _refuse_reuse(session: Session, row: AuthToken, address: str | None) -> NoReturn:
    # Its own transaction: the revocation must stand although this request fails.
    with unit_of_work(shared_session(session.get_bind())) as own:
        revoke_family(own, row.family)
        audit.record(
            own,
            actor=row.account.email,
            action="account.refresh_reuse",
            target=f"account:{row.account_id}",
            address=address,
        )
    raise Unauthorized("This refresh token was already used; sign in again.", code="invalid_token")


def refresh(session: Session, refresh_token: str, address: str | None) -> TokenPair:
    row = lookup(session, refresh_token, "refresh")
    if row is not None and row.revoked_at is not None:
        _refuse_reuse(session, row, address)
    row = resolve(session, refresh_token, "refresh")
    if not _spend(session, row):
        _refuse_reuse(session, row, address)
    session.execute(
        update(AuthToken)
        .where(
            AuthToken.family == row.family,
            AuthToken.kind == "access",
            AuthToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return issue_pair(session, row.account, row.tenant, address, family=row.family)


def csrf_token(secret_key: str, session_secret: str) -> str:
    """Bound to the session: a page from another site cannot know it."""
    return hmac.new(secret_key.encode(), digest(session_secret).encode(), "sha256").hexdigest()


def csrf_valid(secret_key: str, session_secret: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(
        csrf_token(secret_key, session_secret), presented or ""
    )
