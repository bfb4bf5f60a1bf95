"""Password login with rate limits and lockout, and the password-reset flow.

Unknown emails and wrong passwords get the same answer in about the same time
(a dummy argon2 verification), and lockout counts failures per email whether
or not the account exists, so no response reveals which emails are registered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from redis import Redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kefu import audit
from kefu.access.accounts import account_by_email, normalise_email
from kefu.access.models import Account, AuthToken, PasswordReset
from kefu.access.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from kefu.access.secrets_util import digest, new_secret
from kefu.api.errors import ApiError, Unauthorized, ValidationFailed
from kefu.database import utcnow

log = logging.getLogger("kefu.mail")
RESET_TTL = timedelta(minutes=30)


@dataclass(frozen=True)
class LoginLimits:
    max_failures: int = 5
    lock_seconds: int = 900
    max_per_address: int = 50
    address_window_seconds: int = 900
    key_prefix: str = "kefu"


class TooManyAttempts(ApiError):
    status = 429
    code = "too_many_attempts"


def _failure_key(limits: LoginLimits, email: str) -> str:
    return f"{limits.key_prefix}:login:failures:{digest(email)}"


def _address_key(limits: LoginLimits, address: str) -> str:
    return f"{limits.key_prefix}:login:address:{address}"


def _check_address(redis: Redis, address: str | None, limits: LoginLimits) -> None:
    if not address:
        return
    key = _address_key(limits, address)
    attempts = redis.incr(key)
    if attempts == 1:
        redis.expire(key, limits.address_window_seconds)
    if attempts > limits.max_per_address:
        raise TooManyAttempts("Too many sign-in attempts from this address; wait and retry.")


def _reserve_attempt(redis: Redis, email: str, limits: LoginLimits) -> None:
    """Count the attempt before verifying it, so parallel guesses cannot slip past
    the lockout while earlier ones are still being checked."""
    key = _failure_key(limits, email)
    attempts = redis.incr(key)
    if attempts == 1:
        redis.expire(key, limits.lock_seconds)
    if attempts > limits.max_failures:
        raise TooManyAttempts(
            "Too many failed sign-ins for this account; try again in a few minutes.",
            code="account_locked",
        )


def _record_failure(redis: Redis, email: str, limits: LoginLimits) -> None:
    """The reserved attempt stays counted; the lock runs from the latest failure."""
    redis.expire(_failure_key(limits, email), limits.lock_seconds)


def authenticate(
    session: Session,
    redis: Redis,
    *,
    email: str,
    password: str,
    address: str | None,
    limits: LoginLimits,
) -> Account:
    email = normalise_email(email)
    _check_address(redis, address, limits)
    _reserve_attempt(redis, email, limits)
    account = account_by_email(session, email)
    ok = verify_password(account.password_hash if account else None, password)
    if not ok or account is None or account.status != "active":
        _record_failure(redis, email, limits)
        # Its own transaction: the failure stays audited although this request fails.
        audit.record_now(
            session.get_bind(), actor=email, action="account.login_failed", address=address
        )
        raise Unauthorized("The email or password is not correct.", code="invalid_credentials")
    redis.delete(_failure_key(limits, email))
    account.last_login_at = utcnow()
    audit.record(session, actor=email, action="account.login", address=address)
    return account


def request_password_reset(
    session: Session,
    redis: Redis,
    email: str,
    *,
    address: str | None,
    limits: LoginLimits,
    base_url: str,
    log_link: bool,
) -> None:
    """Counts against the same per-address limit as sign-ins (no mail bombing)."""
    _check_address(redis, address, limits)
    account = account_by_email(session, email)
    if account is None or account.status != "active":
        return
    secret = new_secret("kefupr_")
    session.add(
        PasswordReset(
            account_id=account.id, token_hash=digest(secret), expires_at=utcnow() + RESET_TTL
        )
    )
    audit.record(session, actor=account.email, action="account.password_reset_requested")
    if log_link:  # until the messaging module delivers mail; never in production
        log.warning(
            "password reset link for %s: %s/reset-password?token=%s",
            account.email,
            base_url,
            secret,
        )


def reset_password(session: Session, token: str, new_password: str) -> Account:
    row = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == digest(token)))
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise ValidationFailed("token", "is invalid, used or expired")
    if len(new_password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed("new_password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    row.used_at = utcnow()
    account = session.get(Account, row.account_id)
    account.password_hash = hash_password(new_password)
    account.password_changed_at = utcnow()
    # A reset ends every existing sign-in.
    session.execute(
        update(AuthToken)
        .where(AuthToken.account_id == account.id, AuthToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    audit.record(session, actor=account.email, action="account.password_reset")
    return account
