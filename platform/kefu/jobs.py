"""Background jobs on RQ.

Jobs carry the tenant slug and plain ids, never ORM objects. `enqueue_tenant_job`
names the task by its dotted path; the worker runs `run_tenant_job`, which opens
that tenant's unit of work, calls the task with the session, and commits.
Tasks must be idempotent: RQ retries a failed job with backoff.

Workers start through `kefu worker`, inside an app context (see kefu.cli.worker).
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq import Queue, Retry
from rq.job import Job
from sqlalchemy import select

from kefu.database import shared_session, tenant_session, unit_of_work
from kefu.platform_state import PlatformState, platform
from kefu.tenancy.models import Tenant, TenantStatus

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


def retry_policy(max_retries: int) -> Retry | None:
    """Back off 10 s, 60 s, then 300 s for every further attempt; None when retries are off.

    RQ picks the interval for a retry as `intervals[len(intervals) - retries_left]`, so
    the list must have one entry per retry or the early attempts reuse the first one.
    """
    if max_retries < 1:
        return None
    intervals = [RETRY_INTERVALS[min(i, len(RETRY_INTERVALS) - 1)] for i in range(max_retries)]
    return Retry(max=max_retries, interval=intervals)


def enqueue_tenant_job(
    tenant_slug: str,
    task: Callable[..., Any],
    *,
    queue_name: str = DEFAULT_QUEUE,
    job_id: str | None = None,
    delay: timedelta | None = None,
    **kwargs: Any,
) -> Job:
    """Put `task` on a queue for one tenant, now or after `delay` (RQ's scheduler)."""
    state = platform()
    target = queue(state.redis, queue_name, state.settings.job_queue_prefix)
    args = (run_tenant_job, tenant_slug, task_path(task), kwargs)
    options: dict[str, Any] = {
        "job_id": job_id,
        "retry": retry_policy(state.settings.job_max_retries),
        "description": f"{tenant_slug}: {task.__qualname__}",
    }
    if delay is not None and delay > timedelta(0):
        return target.enqueue_in(delay, *args, **options)
    return target.enqueue(*args, **options)


def _resolve_task(path: str) -> Callable[..., Any]:
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


@functools.cache
def _standalone_app() -> Flask:
    """One app per process for jobs run outside `kefu worker` (e.g. a plain `rq worker`)."""
    from kefu.app import create_app  # composition root, imported lazily by the worker

    return create_app()


def _app() -> Flask:
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    return _standalone_app()


def _job_tenant(state: PlatformState, tenant_slug: str) -> JobTenant:
    """The tenant, if it can run jobs now; TenantUnavailable otherwise."""
    with shared_session(state.engine) as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == tenant_slug))
    if tenant is None:
        raise TenantUnavailable(f"tenant {tenant_slug} does not exist")
    if tenant.status != TenantStatus.active:
        raise TenantUnavailable(f"tenant {tenant_slug} is {tenant.status.value}")
    return JobTenant(slug=tenant.slug, schema=tenant.schema, id=tenant.id)


def run_tenant_job(tenant_slug: str, path: str, kwargs: dict[str, Any]) -> Any:
    """The function RQ executes: open the tenant's unit of work around the task."""
    app = _app()
    with app.app_context():
        state = platform(app)
        tenant = _job_tenant(state, tenant_slug)
        task = _resolve_task(path)
        with unit_of_work(tenant_session(state.engine, tenant.schema)) as db:
            return task(db, tenant, **kwargs)
