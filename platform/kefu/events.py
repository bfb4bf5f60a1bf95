"""The domain event bus with a transactional outbox.

A module publishes an event inside its unit of work: the event is a row of the
tenant's `outbox_events` table, committed (or rolled back) with the change it
describes. After the commit a dispatch job is enqueued; the job hands pending
events, oldest first, to the subscribers registered for their name. So an event
is never lost when its transaction commits and never sent when it rolls back;
if the process dies between commit and enqueue, `kefu events sweep` (or the next
publish in that tenant) dispatches it.

Subscribers must be idempotent: an event is delivered at least once. A failing
subscriber leaves the event pending (with the error and attempt count) and holds
back later events of the same aggregate, so per-aggregate order is kept.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String, func, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from kefu.database import TenantBase, after_commit, bigint_pk, tenant_slug_of, utcnow

log = logging.getLogger(__name__)
MAX_ERROR_LENGTH = 500
ALL_EVENTS = "*"


class OutboxEvent(TenantBase):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index(
            "ix_outbox_events_pending",
            "id",
            postgresql_where=text("dispatched_at IS NULL"),
        ),
    )

    id: Mapped[int] = bigint_pk()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    aggregate: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(MAX_ERROR_LENGTH))


@dataclass(frozen=True)
class DomainEvent:
    id: int
    name: str
    version: int
    tenant: str
    occurred_at: datetime
    aggregate: str | None
    payload: dict[str, Any]


Subscriber = Callable[[Session, DomainEvent], None]
_subscribers: dict[str, list[Subscriber]] = defaultdict(list)


def subscribe(name: str) -> Callable[[Subscriber], Subscriber]:
    """Register a subscriber for an event name (or "*" for every event)."""

    def decorator(function: Subscriber) -> Subscriber:
        if function not in _subscribers[name]:
            _subscribers[name].append(function)
        return function

    return decorator


def unsubscribe(name: str, function: Subscriber) -> None:
    if function in _subscribers.get(name, []):
        _subscribers[name].remove(function)


def subscribers_for(name: str) -> list[Subscriber]:
    return [*_subscribers.get(name, []), *_subscribers.get(ALL_EVENTS, [])]


def publish(
    db: Session,
    name: str,
    payload: dict[str, Any],
    *,
    aggregate: str | None = None,
    version: int = 1,
) -> OutboxEvent:
    """Record an event in the caller's transaction; dispatch is arranged for after commit."""
    row = OutboxEvent(
        name=name, version=version, aggregate=aggregate, payload=payload, occurred_at=utcnow()
    )
    db.add(row)
    _dispatch_after_commit(db, tenant_slug_of(db))
    return row


def _dispatch_after_commit(db: Session, tenant_slug: str) -> None:
    """One dispatch job per committed transaction that published."""
    if db.info.get("kefu_dispatch_armed"):
        return
    db.info["kefu_dispatch_armed"] = True

    def dispatch() -> None:
        db.info.pop("kefu_dispatch_armed", None)
        enqueue_dispatch(tenant_slug)

    after_commit(db, dispatch)


def enqueue_dispatch(tenant_slug: str) -> None:
    from kefu.jobs import enqueue_tenant_job

    enqueue_tenant_job(tenant_slug, dispatch_pending_job, queue_name="high")


def _as_domain_event(row: OutboxEvent, tenant_slug: str) -> DomainEvent:
    return DomainEvent(
        id=row.id,
        name=row.name,
        version=row.version,
        tenant=tenant_slug,
        occurred_at=row.occurred_at,
        aggregate=row.aggregate,
        payload=row.payload,
    )


def dispatch_pending(db: Session, tenant_slug: str, limit: int = 500) -> int:
    """Hand pending events to their subscribers, oldest first; returns how many
    were dispatched. Concurrent dispatchers skip each other's rows."""
    rows = db.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.dispatched_at.is_(None))
        .order_by(OutboxEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    blocked: set[str] = set()
    dispatched = 0
    for row in rows:
        if row.aggregate is not None and row.aggregate in blocked:
            continue
        try:
            with db.begin_nested():
                for subscriber in subscribers_for(row.name):
                    subscriber(db, _as_domain_event(row, tenant_slug))
        except Exception as exc:  # recorded on the event; it stays pending
            row.attempts += 1
            row.last_error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
            if row.aggregate is not None:
                blocked.add(row.aggregate)
            continue
        row.attempts += 1
        row.dispatched_at = utcnow()
        dispatched += 1
    return dispatched


def dispatch_pending_job(db: Session, tenant: Any) -> int:
    """The RQ task (see kefu.jobs.run_tenant_job)."""
    return dispatch_pending(db, tenant.slug)


def pending_count(db: Session) -> int:
    query = select(func.count()).where(OutboxEvent.dispatched_at.is_(None))
    return db.scalar(query.select_from(OutboxEvent)) or 0
