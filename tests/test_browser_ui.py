"""The browser sign-in: CSRF-protected forms, a cookie session, the workspace,
through the test client and through a real headless Chromium."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import AGENT_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def csrf_from(client) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    cookie = client.get_cookie("kefu_csrf")
    assert cookie is not None and cookie.http_only
    assert f'value="{cookie.value}"' in page.get_data(as_text=True)
    return cookie.value


def test_login_form_requires_its_csrf_token(app, tenant, make_agent) -> None:
    agent = make_agent(tenant, "agent")
    client = app.test_client()
    csrf_from(client)
    forged = client.post(
        "/login", data={"email": agent.email, "password": AGENT_PASSWORD, "csrf_token": "guessed"}
    )
    assert forged.status_code == 400
    assert client.get_cookie("kefu_session") is None


def test_cookie_session_workspace_and_logout(app, tenant, other_tenant, make_agent) -> None:
    agent = make_agent(tenant, "agent")
    client = app.test_client()
    token = csrf_from(client)
    wrong = client.post(
        "/login", data={"email": agent.email, "password": "nope-nope-nope", "csrf_token": token}
    )
    assert wrong.status_code == 401 and "not correct" in wrong.get_data(as_text=True)
    assert client.get_cookie("kefu_session") is None
    signed_in = client.post(
        "/login", data={"email": agent.email, "password": AGENT_PASSWORD, "csrf_token": token}
    )
    assert signed_in.status_code == 302 and signed_in.location.endswith("/workspace")
    session_cookie = client.get_cookie("kefu_session")
    assert session_cookie.http_only and session_cookie.same_site == "Lax"
    page = client.get("/workspace").get_data(as_text=True)
    assert tenant.slug in page and "测试租户" in page
    assert other_tenant.slug not in page

    no_csrf = client.post("/logout", data={})
    assert no_csrf.status_code == 400
    assert client.get("/workspace").status_code == 200  # still signed in
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    client.set_cookie("kefu_session", session_cookie.value)  # a stolen copy is dead too
    assert client.get("/workspace").status_code == 302


@pytest.fixture
def live_server(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_sign_in_in_a_real_browser(live_server, tenant, make_agent, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    agent = make_agent(tenant, "agent")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server}/login")
            page.fill("input[name=email]", agent.email)
            page.fill("input[name=password]", "wrong password!")
            page.click("button[type=submit]")
            assert page.locator(".error").is_visible()
            page.fill("input[name=password]", AGENT_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{live_server}/workspace")
            assert "测试租户 Test tenant" in page.inner_text("ul.tenants")
            page.screenshot(path=str(tmp_path / "workspace.png"))
            page.click("text=退出 Sign out")
            page.wait_for_url(f"{live_server}/login")
            page.goto(f"{live_server}/workspace")
            assert page.url.endswith("/login")
        finally:
            browser.close()
