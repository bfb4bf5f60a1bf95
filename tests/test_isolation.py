"""Tenant isolation: a second tenant can neither read nor change the first
tenant's data, and one pooled connection never leaks a tenant's search_path."""

from __future__ import annotations

import dataclasses

from sqlalchemy import func, select, text

from kefu.app import create_app
from kefu.customers.models import Customer
from kefu.database import tenant_session, unit_of_work

CUSTOMERS = "/api/v1/customers"


def test_other_tenant_cannot_read_list_change_or_delete(client, tenant, other_tenant) -> None:
    # Ids are per schema: give A's customer an id that B does not have.
    for filler in ("填充1", "填充2"):
        client.post(CUSTOMERS, json={"name": filler}, headers=tenant.headers)
    created = client.post(
        CUSTOMERS,
        json={
            "name": "甲方客户",
            "emails": ["a@a.cn"],
            "external_ids": [{"source": "s", "id": "1"}],
        },
        headers=tenant.headers,
    ).json
    url = f"{CUSTOMERS}/{created['id']}"
    intruder = other_tenant.headers

    # 404 (not 403) so that B cannot even learn that A's id exists.
    assert client.get(url, headers=intruder).status_code == 404
    assert client.patch(url, json={"name": "hacked"}, headers=intruder).status_code == 404
    assert client.delete(url, headers=intruder).status_code == 404
    own_b = client.post(CUSTOMERS, json={"name": "乙方"}, headers=intruder).json
    steal = client.post(
        f"{CUSTOMERS}/{own_b['id']}/merge", json={"source_id": created["id"]}, headers=intruder
    )
    assert steal.status_code == 404 and steal.json["code"] == "customer_not_found"
    for query in ("", "?email=a@a.cn", "?q=甲方", "?external_source=s&external_id=1"):
        items = client.get(f"{CUSTOMERS}{query}", headers=intruder).json["items"]
        assert [c["name"] for c in items] in ([], ["乙方"]), query

    own = client.get(url, headers=tenant.headers)
    assert own.status_code == 200 and own.json["name"] == "甲方客户"


def test_same_external_id_may_exist_in_two_tenants(client, tenant, other_tenant) -> None:
    body = {"name": "x", "external_ids": [{"source": "shop", "id": "same"}]}
    assert client.post(CUSTOMERS, json=body, headers=tenant.headers).status_code == 201
    assert client.post(CUSTOMERS, json=body, headers=other_tenant.headers).status_code == 201


def test_idempotency_keys_are_per_tenant(client, tenant, other_tenant) -> None:
    key = {"Idempotency-Key": "shared-key"}
    first = client.post(CUSTOMERS, json={"name": "A"}, headers={**tenant.headers, **key})
    second = client.post(CUSTOMERS, json={"name": "B"}, headers={**other_tenant.headers, **key})
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    assert second.json["name"] == "B"


def test_text_sql_in_a_tenant_unit_of_work_resolves_to_that_tenant(
    state, tenant, other_tenant, tenant_db
) -> None:
    with tenant_db(tenant) as db:
        db.add(Customer(name="only-in-a", emails=[], phones=[], tags=[], attributes={}))
    for handle, expected in ((tenant, 1), (other_tenant, 0)):
        with unit_of_work(tenant_session(state.engine, handle.tenant.schema)) as db:
            assert db.execute(text("SELECT current_schema()")).scalar() == handle.tenant.schema
            assert db.execute(text("SELECT count(*) FROM customers")).scalar() == expected


def test_search_path_does_not_outlive_the_transaction(state, tenant) -> None:
    with unit_of_work(tenant_session(state.engine, tenant.tenant.schema)) as db:
        db.execute(text("SELECT 1"))
    with state.engine.connect() as connection:
        assert connection.execute(text("SELECT current_schema()")).scalar() == "public"


def test_single_pooled_connection_serves_interleaved_tenants(settings, make_tenant) -> None:
    one_connection = dataclasses.replace(settings, db_pool_size=1, db_pool_max_overflow=0)
    app = create_app(one_connection)
    engine = app.extensions["kefu"].engine
    client = app.test_client()
    handles = [make_tenant(), make_tenant()]
    for index, handle in enumerate(handles):
        for n in range(index + 2):
            response = client.post(CUSTOMERS, json={"name": f"{index}-{n}"}, headers=handle.headers)
            assert response.status_code == 201
    try:
        for i in range(500):
            index = i % 2
            page = client.get(f"{CUSTOMERS}?limit=10", headers=handles[index].headers).json
            names = {c["name"] for c in page["items"]}
            assert names == {f"{index}-{n}" for n in range(index + 2)}, (i, names)
            with unit_of_work(tenant_session(engine, handles[index].tenant.schema)) as db:
                count = db.scalar(select(func.count()).select_from(Customer))
                raw = db.execute(text("SELECT count(*) FROM customers")).scalar()
                assert count == raw == index + 2
        assert engine.pool.size() == 1
    finally:
        engine.dispose()
