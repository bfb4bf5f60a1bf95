"""Background jobs on RQ.

Jobs carry the tenant slug and plain ids, never ORM objects. `enqueue_tenant_job`
names the task by its dotted path; the worker runs `run_tenant_job`, which opens
that tenant's unit of work, calls the task with the session, and commits.
Tasks must be idempotent: RQ retries a failed job with backoff.

Workers start through `kefu worker`, inside an app context (see kefu.cli.worker).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq import Queue, Retry
from rq.job import Job

from kefu.database import shared_session, tenant_session, unit_of_work
from kefu.platform_state import platform
from kefu.tenancy.models import TenantStatus
from kefu.tenancy.service import get_tenant

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "default"
QUEUES = ("high", DEFAULT_QUEUE, "low")
RETRY_INTERVALS = [10, 60, 300]


@dataclass(frozen=True)
class JobTenant:
    slug: str
    schema: str
    id: int


class TenantUnavailable(RuntimeError):
    """The job's tenant is gone, suspended or archived; RQ records the failure."""


def queue(redis: Redis, name: str = DEFAULT_QUEUE, prefix: str = "kefu") -> Queue:
    return Queue(f"{prefix}:{name}", connection=redis)


def queue_names(prefix: str) -> list[str]:
    return [f"{prefix}:{name}" for name in QUEUES]


def task_path(task: Callable[..., Any]) -> str:
    return f"{task.__module__}:{task.__qualname__}"


def enqueue_tenant_job(
    tenant_slug: str,
    task: Callable[..., Any],
    *,
    queue_name: str = DEFAULT_QUEUE,
    job_id: str | None = None,
    **kwargs: Any,
) -> Job:
    state = platform()
    retries = state.settings.job_max_retries
    return queue(state.redis, queue_name, state.settings.job_queue_prefix).enqueue(
        run_tenant_job,
        tenant_slug,
        task_path(task),
        kwargs,
        job_id=job_id,
        retry=Retry(max=retries, interval=RETRY_INTERVALS[:retries] or [10]) if retries else None,
        description=f"{tenant_slug}: {task.__qualname__}",
    )


def _resolve_task(path: str) -> Callable[..., Any]:
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _app() -> Flask:
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    from kefu.app import create_app  # composition root, imported lazily by the worker

    return create_app()


def run_tenant_job(tenant_slug: str, path: str, kwargs: dict[str, Any]) -> Any:
    """The function RQ executes: open the tenant's unit of work around the task."""
    app = _app()
    with app.app_context():
        state = platform(app)
        with shared_session(state.engine) as session:
            tenant = get_tenant(session, tenant_slug)
        if tenant.status != TenantStatus.active:
            raise TenantUnavailable(f"tenant {tenant_slug} is {tenant.status.value}")
        task = _resolve_task(path)
        job_tenant = JobTenant(slug=tenant.slug, schema=tenant.schema, id=tenant.id)
        with unit_of_work(tenant_session(state.engine, tenant.schema)) as db:
            return task(db, job_tenant, **kwargs)
