"""Customer profiles through the tenant API: the whole path from API key to
tenant schema."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import func, select

from kefu.customers.models import Customer

CUSTOMERS = "/api/v1/customers"


def create(client, tenant, **fields):
    body = {"name": "张伟", **fields}
    response = client.post(CUSTOMERS, json=body, headers=tenant.headers)
    assert response.status_code == 201, response.json
    return response.json


def test_create_get_update_delete(client, tenant) -> None:
    created = create(
        client,
        tenant,
        emails=["Zhang.Wei@Example.CN"],
        phones=["+86 138-0013-8000"],
        tags=["vip", "售后"],
        attributes={"城市": "上海", "orders": 12},
        vip_level=3,
        external_ids=[{"source": "shop", "id": "u-1"}],
    )
    assert created["name"] == "张伟"
    assert created["emails"] == ["zhang.wei@example.cn"]
    assert created["phones"] == ["+8613800138000"]
    assert created["external_ids"] == [{"source": "shop", "id": "u-1"}]

    url = f"{CUSTOMERS}/{created['id']}"
    fetched = client.get(url, headers=tenant.headers)
    assert fetched.status_code == 200
    assert fetched.json["attributes"] == {"城市": "上海", "orders": 12}
    assert "张伟".encode() in fetched.data  # JSON keeps Chinese readable, not \u escapes

    patched = client.patch(url, json={"vip_level": 5, "tags": ["vip"]}, headers=tenant.headers)
    assert patched.status_code == 200
    assert patched.json["vip_level"] == 5 and patched.json["tags"] == ["vip"]
    assert patched.json["emails"] == ["zhang.wei@example.cn"]  # untouched fields stay

    assert client.delete(url, headers=tenant.headers).status_code == 204
    gone = client.get(url, headers=tenant.headers)
    assert gone.status_code == 404 and gone.json["code"] == "customer_not_found"


def test_filters_and_search(client, tenant) -> None:
    create(client, tenant, name="王芳", emails=["wf@x.cn"], tags=["售前"])
    create(client, tenant, name="Emma Wilson", phones=["+44 20 7946 0000"], tags=["vip"])
    create(client, tenant, name="王小明", external_ids=[{"source": "crm", "id": "42"}])

    def names(query: str) -> list[str]:
        response = client.get(f"{CUSTOMERS}?{query}", headers=tenant.headers)
        assert response.status_code == 200, response.json
        return sorted(c["name"] for c in response.json["items"])

    assert names("q=王") == ["王小明", "王芳"]
    assert names("q=wils") == ["Emma Wilson"]
    assert names("email=WF@X.CN") == ["王芳"]
    assert names("phone=%2B44 20 7946-0000") == ["Emma Wilson"]
    assert names("tag=售前") == ["王芳"]
    assert names("external_source=crm&external_id=42") == ["王小明"]
    assert names("q=%25") == []  # LIKE wildcards are literal


def test_external_id_filter_needs_both_parts(client, tenant) -> None:
    response = client.get(f"{CUSTOMERS}?external_id=42", headers=tenant.headers)
    assert response.status_code == 422
    assert "external_source" in response.json["errors"]


def test_cursor_pagination_walks_every_row_once(client, tenant, tenant_db) -> None:
    with tenant_db(tenant) as db:
        db.add_all(
            Customer(name=f"客户{i:03d}", emails=[], phones=[], tags=[], attributes={})
            for i in range(125)
        )
    for sort in ("-created_at", "name", "-name", "updated_at"):
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            query = f"{CUSTOMERS}?limit=40&sort={sort}" + (f"&cursor={cursor}" if cursor else "")
            page = client.get(query, headers=tenant.headers).json
            seen.extend(c["id"] for c in page["items"])
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 125 and len(set(seen)) == 125, sort
        assert pages == 4
    first = client.get(f"{CUSTOMERS}?limit=3&sort=name", headers=tenant.headers).json
    assert [c["name"] for c in first["items"]] == ["客户000", "客户001", "客户002"]


def test_cursor_from_another_sort_is_rejected(client, tenant) -> None:
    create(client, tenant)
    create(client, tenant)
    page = client.get(f"{CUSTOMERS}?limit=1&sort=name", headers=tenant.headers).json
    response = client.get(
        f"{CUSTOMERS}?limit=1&sort=-created_at&cursor={page['next_cursor']}",
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert "cursor" in response.json["errors"]


def test_bad_input_gets_4xx_naming_the_field(client, tenant) -> None:
    cases = [
        ({"name": ""}, "name"),
        ({"name": "x", "emails": ["not-an-email"]}, "emails"),
        ({"name": "x", "phones": ["call me"]}, "phones"),
        ({"name": "x", "vip_level": 99}, "vip_level"),
        ({"name": "x", "vip_level": "high"}, "vip_level"),
        ({"name": "x", "unknown_field": 1}, "unknown_field"),
        ({"name": "x", "external_ids": [{"source": "Bad Source", "id": "1"}]}, "external_ids"),
        ({"name": "x", "attributes": {"big": "x" * 20000}}, "attributes"),
        ({}, "name"),
    ]
    for body, field in cases:
        response = client.post(CUSTOMERS, json=body, headers=tenant.headers)
        assert response.status_code == 422, (body, response.json)
        assert response.json["code"] == "validation_error"
        assert field in response.json["errors"], (body, response.json)
    bad_json = client.post(
        CUSTOMERS, data="{nope", headers={**tenant.headers, "Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json["code"] == "invalid_json"
    not_object = client.post(CUSTOMERS, json=[1, 2], headers=tenant.headers)
    assert not_object.status_code == 422
    too_big = client.post(
        CUSTOMERS,
        data="x" * 2_000_000,
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert too_big.status_code == 413 and too_big.json["code"] == "payload_too_large"
    bad_limit = client.get(f"{CUSTOMERS}?limit=0", headers=tenant.headers)
    assert bad_limit.status_code == 422 and "limit" in bad_limit.json["errors"]
    bad_sort = client.get(f"{CUSTOMERS}?sort=password", headers=tenant.headers)
    assert bad_sort.status_code == 422 and "sort" in bad_sort.json["errors"]


def test_rejected_write_leaves_nothing_behind(client, tenant, tenant_db) -> None:
    create(client, tenant, external_ids=[{"source": "shop", "id": "taken"}])
    response = client.post(
        CUSTOMERS,
        json={"name": "dup", "external_ids": [{"source": "shop", "id": "taken"}]},
        headers=tenant.headers,
    )
    assert response.status_code == 409 and response.json["code"] == "external_id_taken"
    with tenant_db(tenant) as db:
        assert db.scalar(select(func.count()).select_from(Customer)) == 1


def test_idempotency_key_replays_the_first_response(client, tenant, tenant_db) -> None:
    headers = {**tenant.headers, "Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = client.post(CUSTOMERS, json={"name": "李娜"}, headers=headers)
    again = client.post(CUSTOMERS, json={"name": "李娜"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    with tenant_db(tenant) as db:
        assert db.scalar(select(func.count()).select_from(Customer)) == 1
    reused = client.post(CUSTOMERS, json={"name": "someone else"}, headers=headers)
    assert reused.status_code == 422 and reused.json["code"] == "idempotency_key_reused"


def test_idempotency_key_under_concurrency_creates_one_record(app, tenant, tenant_db) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "concurrent-key"}
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def post() -> None:
        barrier.wait()
        response = app.test_client().post(CUSTOMERS, json={"name": "并发"}, headers=headers)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 6
    with tenant_db(tenant) as db:
        assert db.scalar(select(func.count()).select_from(Customer)) == 1


def test_failed_request_does_not_burn_the_idempotency_key(client, tenant) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "retry-after-fix"}
    bad = client.post(CUSTOMERS, json={"name": "x", "vip_level": 99}, headers=headers)
    assert bad.status_code == 422
    good = client.post(CUSTOMERS, json={"name": "x", "vip_level": 9}, headers=headers)
    assert good.status_code == 201 and "Idempotent-Replayed" not in good.headers


def test_merge_folds_the_duplicate_into_the_target(client, tenant) -> None:
    target = create(
        client,
        tenant,
        name="张伟",
        emails=["zw@a.cn"],
        tags=["vip"],
        attributes={"city": "上海"},
        vip_level=1,
    )
    source = create(
        client,
        tenant,
        name="Zhang Wei",
        emails=["zw@b.cn", "zw@a.cn"],
        phones=["13800138000"],
        tags=["售后"],
        attributes={"city": "北京", "age": 30},
        vip_level=4,
        external_ids=[{"source": "zendesk", "id": "9"}],
    )
    response = client.post(
        f"{CUSTOMERS}/{target['id']}/merge",
        json={"source_id": source["id"]},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.json
    merged = response.json
    assert merged["emails"] == ["zw@a.cn", "zw@b.cn"]
    assert merged["phones"] == ["13800138000"]
    assert merged["tags"] == ["vip", "售后"]
    assert merged["attributes"] == {"city": "上海", "age": 30}
    assert merged["vip_level"] == 4
    assert merged["external_ids"] == [{"source": "zendesk", "id": "9"}]
    assert client.get(f"{CUSTOMERS}/{source['id']}", headers=tenant.headers).status_code == 404
    found = client.get(
        f"{CUSTOMERS}?external_source=zendesk&external_id=9", headers=tenant.headers
    ).json
    assert [c["id"] for c in found["items"]] == [target["id"]]


def test_merge_rejects_self_and_unknown(client, tenant) -> None:
    target = create(client, tenant)
    url = f"{CUSTOMERS}/{target['id']}/merge"
    itself = client.post(url, json={"source_id": target["id"]}, headers=tenant.headers)
    assert itself.status_code == 422 and "source_id" in itself.json["errors"]
    unknown = client.post(url, json={"source_id": 999999}, headers=tenant.headers)
    assert unknown.status_code == 404


def test_authentication_is_required(client, tenant) -> None:
    missing = client.get(CUSTOMERS)
    assert missing.status_code == 401 and missing.json["code"] == "invalid_api_key"
    wrong = client.get(CUSTOMERS, headers={"Authorization": "Bearer kefu_00000000_nope"})
    assert wrong.status_code == 401
    header_alone = client.get(CUSTOMERS, headers={"X-Tenant": tenant.slug})
    assert header_alone.status_code == 401
