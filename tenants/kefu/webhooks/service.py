"""Webhooks: endpoints, fan-out of domain events into deliveries, and delivery
with signatures, retries with exponential backoff, per-aggregate order, and
automatic disabling of endpoints that keep failing."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu import audit, events
from kefu.access.authz import Principal
from kefu.access.masking import mask_email, mask_phone
from kefu.api.errors import NotFound, ValidationFailed
from kefu.database import after_commit, tenant_slug_of, utcnow
from kefu.jobs import enqueue_tenant_job
from kefu.outbound import DestinationRefused, post, sign, validate_destination
from kefu.platform_state import platform
from kefu.webhooks.models import WebhookDelivery, WebhookEndpoint

ALLOW_PRIVATE_SETTING = "webhooks_allow_private_addresses"
TIMEOUT_SECONDS = 5.0
FIRST_BACKOFF_SECONDS = 10
MAX_BACKOFF_SECONDS = 3600
RETRY_PERIOD = timedelta(hours=24)
RETRY_HOURS_SETTING = "webhooks_retry_hours"
DISABLE_AFTER_FAILURES = 50
BATCH = 100


def derive_secret(tenant_slug: str, endpoint: WebhookEndpoint) -> str:
    """The endpoint's signing secret, derived so that nothing secret is stored."""
    key = platform().settings.secret_key.encode()
    message = f"webhook:{tenant_slug}:{endpoint.id}:{endpoint.secret_salt}".encode()
    return "whsec_" + hmac.new(key, message, hashlib.sha256).hexdigest()


def private_allowed(tenant_settings: dict[str, Any]) -> bool:
    return bool(tenant_settings.get(ALLOW_PRIVATE_SETTING))


def _validate_events(names: list[str]) -> list[str]:
    cleaned = sorted({name.strip() for name in names if name.strip()})
    if not cleaned:
        raise ValidationFailed("events", 'name at least one event, or "*" for all')
    return cleaned


def _check_pii_choice(principal: Principal, include_pii: bool | None) -> None:
    if include_pii:
        principal.require("customers.view_pii")


def create_endpoint(
    db: Session, principal: Principal, data: dict[str, Any], tenant_settings: dict[str, Any]
) -> WebhookEndpoint:
    validate_destination(data["url"], allow_private=private_allowed(tenant_settings))
    _check_pii_choice(principal, data.get("include_pii"))
    endpoint = WebhookEndpoint(
        url=data["url"],
        description=data.get("description", ""),
        events=_validate_events(data["events"]),
        secret_salt=secrets.token_hex(16),
        active=True,
        include_pii=bool(data.get("include_pii")),
        consecutive_failures=0,
    )
    db.add(endpoint)
    db.flush()
    _audit(db, principal, "webhook.created", endpoint)
    return endpoint


def get_endpoint(db: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"Webhook {endpoint_id} does not exist.", code="webhook_not_found")
    return endpoint


def list_endpoints(db: Session) -> list[WebhookEndpoint]:
    return list(db.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def update_endpoint(
    db: Session,
    principal: Principal,
    endpoint_id: int,
    data: dict[str, Any],
    tenant_settings: dict[str, Any],
) -> WebhookEndpoint:
    endpoint = get_endpoint(db, endpoint_id)
    if "url" in data:
        validate_destination(data["url"], allow_private=private_allowed(tenant_settings))
        endpoint.url = data["url"]
    if "events" in data:
        endpoint.events = _validate_events(data["events"])
    if "description" in data:
        endpoint.description = data["description"]
    if data.get("active") is True:
        endpoint.active, endpoint.consecutive_failures, endpoint.disabled_reason = True, 0, None
    elif data.get("active") is False:
        endpoint.active = False
    if "include_pii" in data:
        _check_pii_choice(principal, data["include_pii"])
        endpoint.include_pii = data["include_pii"]
    if data.get("rotate_secret"):
        endpoint.secret_salt = secrets.token_hex(16)
    db.flush()
    _audit(db, principal, "webhook.updated", endpoint)
    return endpoint


def delete_endpoint(db: Session, principal: Principal, endpoint_id: int) -> None:
    endpoint = get_endpoint(db, endpoint_id)
    _audit(db, principal, "webhook.deleted", endpoint)
    db.delete(endpoint)
    db.flush()


def _audit(db: Session, principal: Principal, action: str, endpoint: WebhookEndpoint) -> None:
    audit.record_after_commit(
        db,
        platform().engine,
        actor=principal.actor,
        action=action,
        tenant_slug=principal.tenant_slug,
        target=f"webhook:{endpoint.id}",
        details={"url": endpoint.url, "events": endpoint.events},
    )


# --- fan-out ---------------------------------------------------------------------


def _wants(endpoint: WebhookEndpoint, name: str) -> bool:
    return "*" in endpoint.events or name in endpoint.events


def masked_payload(value: Any, key: str = "") -> Any:
    """Mask contact details anywhere in a payload (keys naming emails or phones)."""
    if isinstance(value, dict):
        return {k: masked_payload(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [masked_payload(item, key) for item in value]
    if isinstance(value, str) and "email" in key.lower():
        return mask_email(value)
    if isinstance(value, str) and ("phone" in key.lower() or "mobile" in key.lower()):
        return mask_phone(value)
    return value


def delivery_body(event: events.DomainEvent, include_pii: bool) -> dict[str, Any]:
    return {
        "id": event.id,
        "event": event.name,
        "version": event.version,
        "tenant": event.tenant,
        "occurred_at": event.occurred_at.isoformat(),
        "data": event.payload if include_pii else masked_payload(event.payload),
    }


def queue_deliveries(db: Session, event: events.DomainEvent) -> list[int]:
    """Event subscriber: one pending delivery per active endpoint that wants it."""
    endpoints = [
        e
        for e in db.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active))
        if _wants(e, event.name)
    ]
    for endpoint in endpoints:
        add_delivery(
            db,
            endpoint.id,
            event.id,
            event.name,
            event.aggregate,
            delivery_body(event, endpoint.include_pii),
        )
    return [e.id for e in endpoints]


def add_delivery(
    db: Session,
    endpoint_id: int,
    event_id: int,
    event_name: str,
    aggregate: str | None,
    body: dict[str, Any],
) -> WebhookDelivery:
    """A pending delivery, due now; its endpoint's delivery job is enqueued after commit."""
    delivery = WebhookDelivery(
        endpoint_id=endpoint_id,
        event_id=event_id,
        event_name=event_name,
        aggregate=aggregate,
        body=body,
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
    )
    db.add(delivery)
    db.flush()
    armed: set[int] = db.info.setdefault("kefu_webhook_endpoints_armed", set())
    if endpoint_id not in armed:  # one delivery job per endpoint per transaction
        armed.add(endpoint_id)
        slug = tenant_slug_of(db)

        def deliver() -> None:
            armed.discard(endpoint_id)
            enqueue_delivery(slug, endpoint_id)

        after_commit(db, deliver)
    return delivery


def enqueue_delivery(tenant_slug: str, endpoint_id: int, delay: timedelta | None = None) -> None:
    from kefu.webhooks.jobs import deliver_endpoint

    enqueue_tenant_job(
        tenant_slug, deliver_endpoint, queue_name="high", delay=delay, endpoint_id=endpoint_id
    )


# --- delivery --------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    return timedelta(
        seconds=min(FIRST_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    )


def _attempt(
    delivery: WebhookDelivery, endpoint: WebhookEndpoint, secret: str, allow_private: bool
) -> tuple[bool, str | None]:
    body = json.dumps(delivery.body, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "X-Kefu-Event": delivery.event_name,
        "X-Kefu-Delivery": str(delivery.id),
        "X-Kefu-Timestamp": str(timestamp),
        "X-Kefu-Signature": sign(secret, timestamp, body),
    }
    delivery.attempts += 1
    try:
        result = post(
            endpoint.url, body, headers, timeout=TIMEOUT_SECONDS, allow_private=allow_private
        )
    except (OSError, DestinationRefused) as exc:
        return False, f"{type(exc).__name__}: {exc}"[:500]
    delivery.response_code, delivery.latency_ms = result.status, result.latency_ms
    if 200 <= result.status < 300:
        return True, None
    return False, f"HTTP {result.status}"


def retry_period(tenant_settings: dict[str, Any]) -> timedelta:
    """How long a delivery is retried: the tenant's setting, else 24 hours."""
    hours = tenant_settings.get(RETRY_HOURS_SETTING)
    if isinstance(hours, int | float) and hours > 0:
        return timedelta(hours=float(hours))
    return RETRY_PERIOD


def _record(
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    ok: bool,
    error: str | None,
    now: datetime,
    give_up_after: timedelta,
) -> None:
    if ok:
        delivery.status, delivery.delivered_at, delivery.last_error = "succeeded", now, None
        endpoint.consecutive_failures = 0
        return
    delivery.last_error = error
    endpoint.consecutive_failures += 1
    if now - delivery.created_at >= give_up_after:
        delivery.status = "failed"
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    if endpoint.consecutive_failures >= DISABLE_AFTER_FAILURES and endpoint.active:
        endpoint.active = False
        endpoint.disabled_reason = f"{endpoint.consecutive_failures} consecutive failures"


def deliver_due(db: Session, endpoint_id: int, tenant_settings: dict[str, Any]) -> timedelta | None:
    """Deliver this endpoint's due deliveries in order; returns when to come back."""
    endpoint = db.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None or not endpoint.active:
        return None
    secret = derive_secret(tenant_slug_of(db), endpoint)
    allow_private = private_allowed(tenant_settings)
    pending = db.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending")
        .order_by(WebhookDelivery.id)
        .limit(BATCH)
    ).all()
    blocked: set[str | None] = set()
    now = utcnow()
    for delivery in pending:
        key = delivery.aggregate or f"delivery:{delivery.id}"
        if key in blocked or delivery.next_attempt_at > now:
            blocked.add(key)  # later events of this aggregate wait their turn
            continue
        ok, error = _attempt(delivery, endpoint, secret, allow_private)
        _record(delivery, endpoint, ok, error, now, retry_period(tenant_settings))
        if not ok:
            blocked.add(key)
        if not endpoint.active:
            break
    return _next_visit(db, endpoint)


def _next_visit(db: Session, endpoint: WebhookEndpoint) -> timedelta | None:
    if not endpoint.active:
        return None
    db.flush()
    soonest = db.scalar(
        select(WebhookDelivery.next_attempt_at)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending")
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(1)
    )
    if soonest is None:
        return None
    return max(soonest - utcnow(), timedelta(0))


def list_deliveries(db: Session, endpoint_id: int, limit: int) -> list[WebhookDelivery]:
    get_endpoint(db, endpoint_id)
    return list(
        db.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


def replay_delivery(db: Session, principal: Principal, delivery_id: int) -> WebhookDelivery:
    original = db.get(WebhookDelivery, delivery_id)
    if original is None:
        raise NotFound(f"Delivery {delivery_id} does not exist.", code="delivery_not_found")
    return add_delivery(
        db,
        original.endpoint_id,
        original.event_id,
        original.event_name,
        original.aggregate,
        original.body,
    )


def send_test(db: Session, principal: Principal, endpoint_id: int) -> WebhookDelivery:
    endpoint = get_endpoint(db, endpoint_id)
    body = {
        "id": 0,
        "event": "webhook.test",
        "version": 1,
        "tenant": principal.tenant_slug,
        "occurred_at": utcnow().isoformat(),
        "data": {"message": "测试 test delivery"},
    }
    return add_delivery(db, endpoint.id, 0, "webhook.test", None, body)
