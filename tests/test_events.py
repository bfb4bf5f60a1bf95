"""The transactional outbox: events commit and roll back with their change, a
real worker dispatches them, a sweep recovers a lost dispatch, order holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from kefu import events
from kefu.database import tenant_session, unit_of_work
from kefu.events import DomainEvent, OutboxEvent
from kefu.jobs import queue
from tests.test_jobs import forget_jobs, job_settings, run_worker

__all__ = ["job_settings"]  # a fixture, used by name

CUSTOMERS = "/api/v1/customers"


def outbox(state, handle) -> list[OutboxEvent]:
    with unit_of_work(tenant_session(state.engine, handle.tenant.schema)) as db:
        return list(db.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


def test_rolled_back_request_publishes_nothing(client, state, tenant) -> None:
    body = {"name": "甲", "external_ids": [{"source": "shop", "id": "1"}]}
    assert client.post(CUSTOMERS, json=body, headers=tenant.headers).status_code == 201
    assert client.post(CUSTOMERS, json=body, headers=tenant.headers).status_code == 409
    assert [e.name for e in outbox(state, tenant)] == ["customer.created"]


def test_committed_event_is_dispatched_by_a_real_worker(
    client, state, tenant, job_settings
) -> None:
    created = client.post(CUSTOMERS, json={"name": "李娜"}, headers=tenant.headers).json
    client.patch(f"{CUSTOMERS}/{created['id']}", json={"vip_level": 2}, headers=tenant.headers)
    pending = outbox(state, tenant)
    assert [(e.name, e.aggregate) for e in pending] == [
        ("customer.created", f"customer:{created['id']}"),
        ("customer.updated", f"customer:{created['id']}"),
    ]
    assert pending[1].payload["vip_level"] == 2 and pending[1].payload["changed"] == ["vip_level"]
    assert queue(state.redis, "high", job_settings.job_queue_prefix).count == 2
    run_worker(job_settings)
    assert all(e.dispatched_at is not None for e in outbox(state, tenant))


def test_sweep_recovers_a_dispatch_lost_between_commit_and_enqueue(
    cli, client, state, tenant, job_settings
) -> None:
    client.post(CUSTOMERS, json={"name": "王芳"}, headers=tenant.headers)
    forget_jobs(state.redis, job_settings.job_queue_prefix)  # the "crash": the job is gone
    assert outbox(state, tenant)[0].dispatched_at is None
    result = cli("events", "sweep")
    assert result.exit_code == 0 and f"{tenant.slug}: 1 pending" in result.output
    run_worker(job_settings)
    assert outbox(state, tenant)[0].dispatched_at is not None


class Recorder(list):
    """The events a test subscriber received; aggregates in `failing` raise."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    seen = Recorder()
    failing = seen.failing

    def record(db: Any, event: DomainEvent) -> None:
        if event.aggregate in failing:
            raise RuntimeError(f"receiver down for {event.aggregate}")
        seen.append(event)

    events.subscribe("*")(record)
    yield seen
    events.unsubscribe("*", record)


def publish_many(state, handle, items: list[tuple[str, str]]) -> None:
    with unit_of_work(tenant_session(state.engine, handle.tenant.schema)) as db:
        for name, aggregate in items:
            events.publish(db, name, {"n": len(aggregate)}, aggregate=aggregate)


def dispatch(state, handle) -> int:
    with unit_of_work(tenant_session(state.engine, handle.tenant.schema)) as db:
        return events.dispatch_pending(db, handle.slug)


def test_a_failing_subscriber_holds_back_its_aggregate_only(app, state, tenant, recorder) -> None:
    with app.app_context():
        publish_many(state, tenant, [("a.one", "A"), ("b.one", "B"), ("a.two", "A")])
        recorder.failing.add("A")
        assert dispatch(state, tenant) == 1
        assert [e.name for e in recorder] == ["b.one"]
        stuck = [e for e in outbox(state, tenant) if e.dispatched_at is None]
        assert [e.name for e in stuck] == ["a.one", "a.two"]
        assert stuck[0].attempts == 1 and "receiver down" in stuck[0].last_error
        assert stuck[1].attempts == 0  # never tried out of order
        recorder.failing.clear()
        assert dispatch(state, tenant) == 2
        assert [e.name for e in recorder] == ["b.one", "a.one", "a.two"]
        assert dispatch(state, tenant) == 0  # nothing is delivered twice


def test_dispatch_hands_over_only_its_own_tenants_events(
    app, state, tenant, other_tenant, recorder
) -> None:
    with app.app_context():
        publish_many(state, tenant, [("x.created", "X")])
        publish_many(state, other_tenant, [("y.created", "Y")])
        dispatch(state, tenant)
        assert [(e.tenant, e.name) for e in recorder] == [(tenant.slug, "x.created")]
        assert [e.dispatched_at is None for e in outbox(state, other_tenant)] == [True]
