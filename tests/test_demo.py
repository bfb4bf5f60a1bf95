"""`kefu demo`: the seed data `./dev run` prints, re-runnable."""

from __future__ import annotations

from kefu.cli.demo import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, DEMO_AGENT_PASSWORD


def test_demo_seeds_logins_that_work_and_can_be_rerun(cli, client) -> None:
    first = cli("demo")
    assert first.exit_code == 0, first.output
    again = cli("demo")
    assert again.exit_code == 0, again.output
    key = next(
        line.split("API key ")[1]
        for line in again.output.splitlines()
        if "demo_shop" in line and "API key" in line
    )
    customers = client.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"})
    assert customers.status_code == 200 and len(customers.json["items"]) == 3
    admin = client.post(
        "/api/auth/v1/login", json={"email": DEMO_ADMIN_EMAIL, "password": DEMO_ADMIN_PASSWORD}
    )
    assert admin.status_code == 201
    vendor = client.post(
        "/api/auth/v1/login",
        json={
            "email": "vendor.demo_shop@kefu.local",
            "password": DEMO_AGENT_PASSWORD,
            "tenant": "demo_shop",
        },
    )
    assert vendor.status_code == 201, vendor.json
    headers = {"Authorization": f"Bearer {vendor.json['access_token']}"}
    masked = client.get("/api/v1/customers", headers=headers).json["items"]
    assert all("*" in email for c in masked for email in c["emails"])
