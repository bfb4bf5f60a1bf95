"""Webhooks against a real HTTP receiver on loopback: signatures, retries with
backoff, order, SSRF refusal, the delivery log, replay, tenant isolation."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select, update

from kefu.database import shared_session, tenant_session, unit_of_work, utcnow
from kefu.tenancy.models import Tenant
from kefu.webhooks import service
from kefu.webhooks.models import WebhookDelivery
from tests.test_jobs import job_settings, run_worker

__all__ = ["job_settings"]  # a fixture, used by name

WEBHOOKS = "/api/v1/webhooks"


class Receiver:
    """A loopback HTTP server that records requests and can be told to fail."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self.send_response(503)
                else:
                    receiver.requests.append({"headers": dict(self.headers), "body": body})
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/kefu"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [json.loads(r["body"])["event"] for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.server.shutdown()


def allow_private(state, handle) -> None:
    with unit_of_work(shared_session(state.engine)) as session:
        tenant = session.get(Tenant, handle.tenant.id)
        tenant.settings = {**tenant.settings, service.ALLOW_PRIVATE_SETTING: True}


def register(client, handle, url: str, events: list[str]) -> dict[str, Any]:
    response = client.post(WEBHOOKS, json={"url": url, "events": events}, headers=handle.headers)
    assert response.status_code == 201, response.json
    return response.json


def deliver_now(app, state, handle, endpoint_id: int) -> None:
    with app.app_context(), unit_of_work(tenant_session(state.engine, handle.tenant.schema)) as db:
        service.deliver_due(db, endpoint_id, {service.ALLOW_PRIVATE_SETTING: True})


def dispatch_events(app, state, handle) -> None:
    from kefu import events

    with app.app_context(), unit_of_work(tenant_session(state.engine, handle.tenant.schema)) as db:
        events.dispatch_pending(db, handle.slug)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "ftp://example.com/x",
        "http://user:pw@example.com/x",
    ],
)
def test_internal_or_odd_destinations_are_refused(client, tenant, url) -> None:
    response = client.post(WEBHOOKS, json={"url": url, "events": ["*"]}, headers=tenant.headers)
    assert response.status_code == 422, response.json
    assert "url" in response.json["errors"]


def test_signed_delivery_through_a_real_worker(
    client, state, tenant, receiver, job_settings
) -> None:
    allow_private(state, tenant)
    endpoint = register(client, tenant, receiver.url, ["customer.created"])
    client.post("/api/v1/customers", json={"name": "张伟"}, headers=tenant.headers)
    run_worker(job_settings)  # dispatches the event, then delivers it
    assert receiver.events() == ["customer.created"]
    request = receiver.requests[0]
    timestamp, signature = (
        request["headers"]["X-Kefu-Timestamp"],
        request["headers"]["X-Kefu-Signature"],
    )
    expected = hmac.new(
        endpoint["secret"].encode(), f"{timestamp}.".encode() + request["body"], hashlib.sha256
    ).hexdigest()
    assert signature == f"v1={expected}"
    body = json.loads(request["body"])
    assert body["data"]["name"] == "张伟" and body["tenant"] == tenant.slug
    log = client.get(f"{WEBHOOKS}/{endpoint['id']}/deliveries", headers=tenant.headers).json
    assert [(d["status"], d["response_code"]) for d in log] == [("succeeded", 204)]
    assert log[0]["latency_ms"] is not None


def test_retries_back_off_and_keep_order(app, client, state, tenant, receiver) -> None:
    allow_private(state, tenant)
    endpoint = register(client, tenant, receiver.url, ["*"])
    created = client.post("/api/v1/customers", json={"name": "甲"}, headers=tenant.headers).json
    client.patch(
        f"/api/v1/customers/{created['id']}", json={"vip_level": 3}, headers=tenant.headers
    )
    dispatch_events(app, state, tenant)
    receiver.fail_next = 2
    deliver_now(app, state, tenant, endpoint["id"])
    with unit_of_work(tenant_session(state.engine, tenant.tenant.schema)) as db:
        first, second = db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        assert first.attempts == 1 and second.attempts == 0  # the second waits its turn
        wait = first.next_attempt_at - utcnow()
        assert timedelta(seconds=5) < wait <= timedelta(seconds=service.FIRST_BACKOFF_SECONDS)
        db.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))
    deliver_now(app, state, tenant, endpoint["id"])
    with unit_of_work(tenant_session(state.engine, tenant.tenant.schema)) as db:
        first = db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).first()
        assert first.attempts == 2
        assert first.next_attempt_at - utcnow() > timedelta(seconds=15)  # doubled
        db.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))
    deliver_now(app, state, tenant, endpoint["id"])
    assert receiver.events() == ["customer.created", "customer.updated"]
    ids = [r["headers"]["X-Kefu-Delivery"] for r in receiver.requests]
    assert len(ids) == len(set(ids))


def test_endpoint_that_keeps_failing_is_disabled(app, client, state, tenant, receiver) -> None:
    allow_private(state, tenant)
    endpoint = register(client, tenant, receiver.url, ["*"])
    receiver.fail_next = 10**6
    with unit_of_work(tenant_session(state.engine, tenant.tenant.schema)) as db:
        from kefu.webhooks.models import WebhookEndpoint

        db.get(WebhookEndpoint, endpoint["id"]).consecutive_failures = (
            service.DISABLE_AFTER_FAILURES - 1
        )
    client.post(f"{WEBHOOKS}/{endpoint['id']}/test", headers=tenant.headers)
    deliver_now(app, state, tenant, endpoint["id"])
    shown = client.get(f"{WEBHOOKS}/{endpoint['id']}", headers=tenant.headers).json
    assert shown["active"] is False and "consecutive failures" in shown["disabled_reason"]


def test_replay_and_test_delivery(app, client, state, tenant, receiver) -> None:
    allow_private(state, tenant)
    endpoint = register(client, tenant, receiver.url, ["*"])
    test = client.post(f"{WEBHOOKS}/{endpoint['id']}/test", headers=tenant.headers)
    assert test.status_code == 202
    deliver_now(app, state, tenant, endpoint["id"])
    replay = client.post(f"{WEBHOOKS}/deliveries/{test.json['id']}/replay", headers=tenant.headers)
    assert replay.status_code == 202
    deliver_now(app, state, tenant, endpoint["id"])
    assert receiver.events() == ["webhook.test", "webhook.test"]


def test_a_tenants_webhook_never_receives_another_tenants_events(
    app, client, state, tenant, other_tenant, receiver
) -> None:
    allow_private(state, tenant)
    endpoint = register(client, tenant, receiver.url, ["*"])
    client.post("/api/v1/customers", json={"name": "乙方客户"}, headers=other_tenant.headers)
    dispatch_events(app, state, other_tenant)
    dispatch_events(app, state, tenant)
    deliver_now(app, state, tenant, endpoint["id"])
    assert receiver.requests == []
    hidden = client.get(f"{WEBHOOKS}/{endpoint['id']}", headers=other_tenant.headers)
    assert hidden.status_code == 404


def test_payloads_are_masked_unless_the_endpoint_includes_pii(
    app, client, state, tenant, make_agent, receiver
) -> None:
    allow_private(state, tenant)
    masked = register(client, tenant, receiver.url, ["customer.created"])
    lead = make_agent(tenant, "team_lead")
    refused = client.post(
        WEBHOOKS,
        json={"url": receiver.url, "events": ["*"], "include_pii": True},
        headers=lead.headers,
    )
    assert refused.status_code == 403  # team leads hold no webhooks.manage
    client.post(
        "/api/v1/customers",
        json={"name": "王", "emails": ["w@x.cn"], "phones": ["+8613800138000"]},
        headers=tenant.headers,
    )
    dispatch_events(app, state, tenant)
    deliver_now(app, state, tenant, masked["id"])
    data = json.loads(receiver.requests[0]["body"])["data"]
    assert data["emails"] == ["w***@x.cn"] and data["phones"] == ["+86*******8000"]
    client.patch(f"{WEBHOOKS}/{masked['id']}", json={"include_pii": True}, headers=tenant.headers)
    client.post(
        "/api/v1/customers", json={"name": "李", "emails": ["l@x.cn"]}, headers=tenant.headers
    )
    dispatch_events(app, state, tenant)
    deliver_now(app, state, tenant, masked["id"])
    assert json.loads(receiver.requests[1]["body"])["data"]["emails"] == ["l@x.cn"]


def test_the_documented_verification_recipe_accepts_a_real_delivery(
    app, client, state, tenant, receiver
) -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[1] / "docs" / "webhooks.md").read_text()
    recipe = docs.split("```python\n")[1].split("```")[0]
    namespace: dict[str, Any] = {}
    exec(recipe, namespace)  # the code integrators copy
    allow_private(state, tenant)
    endpoint = register(client, tenant, receiver.url, ["*"])
    client.post(f"{WEBHOOKS}/{endpoint['id']}/test", headers=tenant.headers)
    deliver_now(app, state, tenant, endpoint["id"])
    request = receiver.requests[0]
    headers = request["headers"]
    verify = namespace["verify"]
    assert verify(
        endpoint["secret"],
        headers["X-Kefu-Timestamp"],
        request["body"],
        headers["X-Kefu-Signature"],
    )
    assert not verify(
        "whsec_wrong", headers["X-Kefu-Timestamp"], request["body"], headers["X-Kefu-Signature"]
    )
    assert not verify(
        endpoint["secret"],
        headers["X-Kefu-Timestamp"],
        request["body"] + b" ",
        headers["X-Kefu-Signature"],
    )


def test_event_catalogue_is_in_the_openapi_document(client) -> None:
    schema = client.get("/api/openapi.json").json["components"]["schemas"]["WebhookEvent"]
    assert {"customer.created", "customer.merged", "webhook.test"} <= set(
        schema["properties"]["event"]["enum"]
    )
