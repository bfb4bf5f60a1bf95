"""Settings, the app factory, the request lifecycle, health, modules, OpenAPI."""

from __future__ import annotations

import dataclasses

import pytest
from flask_smorest import Blueprint
from sqlalchemy import func, select

from kefu.api.errors import ApiError
from kefu.app import create_app
from kefu.customers.models import Customer
from kefu.settings import DEVELOPMENT_SECRET, Settings, SettingsError


def test_production_refuses_the_development_secret() -> None:
    env = {
        "KEFU_ENV": "production",
        "KEFU_DATABASE_URL": "postgresql://db/kefu",
        "KEFU_REDIS_URL": "redis://r:6379/0",
    }
    with pytest.raises(SettingsError, match="KEFU_SECRET_KEY"):
        Settings.from_env(env)
    with pytest.raises(SettingsError, match="KEFU_SECRET_KEY"):
        Settings.from_env({**env, "KEFU_SECRET_KEY": "short"})
    settings = Settings.from_env({**env, "KEFU_SECRET_KEY": "k" * 40})
    assert settings.is_production and settings.secret_key != DEVELOPMENT_SECRET


def test_production_requires_real_service_urls() -> None:
    with pytest.raises(SettingsError, match="KEFU_DATABASE_URL"):
        Settings.from_env({"KEFU_ENV": "production", "KEFU_SECRET_KEY": "k" * 40})


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"KEFU_DB_POOL_SIZE": "many"}, "KEFU_DB_POOL_SIZE"),
        ({"KEFU_DB_POOL_SIZE": "0"}, "KEFU_DB_POOL_SIZE"),
        ({"KEFU_ENV": "staging"}, "KEFU_ENV"),
        ({"KEFU_DATABASE_URL": "mysql://x/y"}, "KEFU_DATABASE_URL"),
        ({"KEFU_REDIS_URL": "http://x"}, "KEFU_REDIS_URL"),
    ],
)
def test_malformed_settings_name_the_variable(env, variable) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)


def test_healthz_and_readyz(client) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}


def test_readyz_reports_an_unreachable_redis(settings) -> None:
    app = create_app(dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0"))
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.json["checks"]["redis"].startswith("error")
        assert response.json["checks"]["database"] == "ok"
    finally:
        app.extensions["kefu"].engine.dispose()


def test_readyz_reports_a_tenant_behind(client, state, tenant) -> None:
    from kefu.database import shared_session, unit_of_work
    from kefu.tenancy.models import Tenant

    with unit_of_work(shared_session(state.engine)) as session:
        session.get(Tenant, tenant.tenant.id).schema_revision = "0000"
    try:
        response = client.get("/readyz")
        assert response.status_code == 503 and "behind" in response.json["checks"]["migrations"]
    finally:
        with unit_of_work(shared_session(state.engine)) as session:
            session.get(Tenant, tenant.tenant.id).schema_revision = tenant.tenant.schema_revision


def test_an_error_after_a_write_rolls_the_whole_request_back(settings, tenant, tenant_db) -> None:
    """One request, one transaction: a failure after a flush leaves nothing behind."""
    from flask import g

    from kefu.modules import discover_modules

    app = create_app(settings)
    probe = Blueprint("probe", __name__)

    @probe.route("/boom", methods=["POST"])
    def boom():
        g.db.add(Customer(name="half-written", emails=[], phones=[], tags=[], attributes={}))
        g.db.flush()
        raise ApiError("refused after writing", code="probe_refused", status=409)

    api_ext = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    api_ext.register_blueprint(probe, url_prefix="/api/v1/customers/probe")
    app.extensions["kefu"].blueprint_modules["probe"] = next(iter(discover_modules()))
    try:
        response = app.test_client().post("/api/v1/customers/probe/boom", headers=tenant.headers)
        assert response.status_code == 409 and response.json["code"] == "probe_refused"
        with tenant_db(tenant) as db:
            assert db.scalar(select(func.count()).select_from(Customer)) == 0
    finally:
        app.extensions["kefu"].engine.dispose()


def test_disabled_module_answers_404_module_not_enabled(client, admin_headers, tenant) -> None:
    url = f"/api/platform/v1/tenants/{tenant.slug}/modules/customers"
    assert "customers" not in client.delete(url, headers=admin_headers).json["modules"]
    response = client.get("/api/v1/customers", headers=tenant.headers)
    assert response.status_code == 404 and response.json["code"] == "module_not_enabled"
    assert "customers" in client.put(url, headers=admin_headers).json["modules"]
    assert client.get("/api/v1/customers", headers=tenant.headers).status_code == 200
    unknown = client.put(
        f"/api/platform/v1/tenants/{tenant.slug}/modules/teleport", headers=admin_headers
    )
    assert unknown.status_code == 422


def test_modules_are_discovered_with_their_descriptor(state) -> None:
    customers = state.modules["customers"]
    assert customers.blueprint is not None
    assert "customers.view_pii" in customers.permissions
    assert customers.jobs


def test_openapi_documents_every_operation_and_its_errors(client) -> None:
    spec = client.get("/api/openapi.json").json
    paths = spec["paths"]
    assert "/api/v1/customers" in paths and "/api/platform/v1/tenants" in paths
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation.get("summary") or operation.get("description"), (method, path)
            assert "default" in operation["responses"] or any(
                code.startswith(("4", "5")) for code in operation["responses"]
            ), (method, path)
    error = spec["components"]["schemas"]["Error"]
    assert {"code", "message", "errors"} <= set(error["properties"])
    post = paths["/api/v1/customers"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    assert client.get("/api/docs").status_code == 200


def test_unknown_routes_and_methods_use_the_error_shape(client, tenant) -> None:
    missing = client.get("/api/v1/nothing-here", headers=tenant.headers)
    assert missing.status_code == 404 and missing.json["code"] == "not_found"
    wrong_method = client.put("/api/v1/customers", headers=tenant.headers)
    assert wrong_method.status_code == 405 and wrong_method.json["code"] == "method_not_allowed"


def test_index_page_renders_chinese(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "客服中台" in response.get_data(as_text=True)


def test_embedded_servers_start_and_stop(tmp_path_factory) -> None:
    """The embedded default: PostgreSQL and Redis under a data folder, found again
    by the next process, and really stopped by `kefu services stop`."""
    import os

    import psycopg
    from redis import Redis

    from kefu import embedded

    data_dir = tmp_path_factory.mktemp("embedded")
    urls = embedded.start_services(data_dir)
    assert embedded.start_services(data_dir) == urls  # a second start finds the same servers
    with psycopg.connect(urls.database_url.replace("+psycopg", "")) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("kefu",)
    assert Redis.from_url(urls.redis_url).ping()
    socket_base = embedded._socket_dir(data_dir)
    pids = [
        embedded._pid_from(socket_base / "pg" / "postmaster.pid"),
        embedded._pid_from(socket_base / "redis" / "redis.pid"),
    ]
    assert sorted(embedded.stop_services(data_dir)) == ["postgres", "redis"]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
