"""Tenant API keys for integrators: shown once, stored as a digest, scoped to
a subset of the permission catalogue, optionally expiring, rotatable."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kefu import audit
from kefu.access.models import ApiKey
from kefu.access.secrets_util import digest
from kefu.api.errors import NotFound, Unauthorized, ValidationFailed
from kefu.database import utcnow
from kefu.tenancy.models import Tenant

API_KEY_PREFIX = "kefu_"
# How stale last_used_at may get before a request refreshes it (avoids a write per request).
LAST_USED_RESOLUTION = timedelta(minutes=5)
ROTATION_GRACE = timedelta(hours=24)


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    secret: str


def _validate_scopes(
    scopes: Collection[str] | None, catalogue: Collection[str]
) -> list[str] | None:
    if scopes is None:
        return None
    unknown = sorted(set(scopes) - set(catalogue))
    if unknown:
        raise ValidationFailed("scopes", f"unknown permission(s): {', '.join(unknown)}")
    return sorted(set(scopes))


def create_api_key(
    session: Session,
    *,
    tenant: Tenant,
    name: str,
    actor: str,
    scopes: Collection[str] | None = None,
    catalogue: Collection[str] = (),
    expires_at: datetime | None = None,
) -> CreatedApiKey:
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationFailed("expires_at", "must be in the future")
    prefix = secrets.token_hex(4)
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey(
        tenant_id=tenant.id,
        name=name,
        prefix=prefix,
        key_hash=digest(secret),
        created_by=actor,
        scopes=_validate_scopes(scopes, catalogue),
        expires_at=expires_at,
    )
    session.add(api_key)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="api_key.created",
        tenant_slug=tenant.slug,
        target=f"api_key:{api_key.id}",
        details={"name": name, "prefix": prefix, "scopes": api_key.scopes},
    )
    return CreatedApiKey(api_key=api_key, secret=secret)


def list_api_keys(session: Session, tenant: Tenant) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.tenant_id == tenant.id).order_by(ApiKey.id)
    return list(session.scalars(query))


def _tenant_key(session: Session, tenant: Tenant, key_id: int) -> ApiKey:
    api_key = session.get(ApiKey, key_id)
    if api_key is None or api_key.tenant_id != tenant.id:
        raise NotFound(
            f"API key {key_id} does not exist for this tenant.", code="api_key_not_found"
        )
    return api_key


def revoke_api_key(session: Session, *, tenant: Tenant, key_id: int, actor: str) -> ApiKey:
    api_key = _tenant_key(session, tenant, key_id)
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


def rotate_api_key(session: Session, *, tenant: Tenant, key_id: int, actor: str) -> CreatedApiKey:
    """A new secret with the same name and scopes; the old one keeps working for a
    grace period so the integrator can deploy the new one without downtime."""
    old = _tenant_key(session, tenant, key_id)
    if old.revoked_at is not None:
        raise ValidationFailed("key_id", "is revoked; create a new key instead")
    created = create_api_key(
        session,
        tenant=tenant,
        name=old.name,
        actor=actor,
        scopes=old.scopes,
        catalogue=old.scopes or (),
        expires_at=old.expires_at,
    )
    old.replaced_by_id = created.api_key.id
    grace_end = utcnow() + ROTATION_GRACE
    old.expires_at = min(old.expires_at, grace_end) if old.expires_at else grace_end
    audit.record(
        session,
        actor=actor,
        action="api_key.rotated",
        tenant_slug=tenant.slug,
        target=f"api_key:{key_id}",
        details={"replaced_by": created.api_key.id},
    )
    return created


def resolve_api_key(session: Session, secret: str) -> ApiKey:
    """The live key for `secret`, with its tenant loaded, or 401."""
    api_key = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest(secret)))
    now = utcnow()
    if (
        api_key is None
        or api_key.revoked_at is not None
        or (api_key.expires_at is not None and api_key.expires_at <= now)
    ):
        raise Unauthorized(
            "The API key is missing, unknown, expired or revoked.", code="invalid_api_key"
        )
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == api_key.id).values(last_used_at=now))
    return api_key
