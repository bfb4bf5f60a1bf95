"""Delivery job: one run delivers an endpoint's due deliveries, in order, then
schedules itself for the next retry (RQ's scheduler runs in `kefu worker`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kefu.jobs import JobTenant
from kefu.platform_state import platform
from kefu.tenancy.service import tenant_by_slug
from kefu.webhooks import service


def deliver_endpoint(db: Session, tenant: JobTenant, endpoint_id: int) -> None:
    settings = tenant_by_slug(platform().engine, tenant.slug).settings
    come_back = service.deliver_due(db, endpoint_id, settings)
    if come_back is not None:
        service.enqueue_delivery(tenant.slug, endpoint_id, delay=come_back)


JOBS = (deliver_endpoint,)
