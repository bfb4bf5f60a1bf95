"""The app factory: the composition root of the web process.

Subsystems are initialised in order, each needing only what came before:
settings -> services (embedded when no URLs) -> database engine -> Redis ->
modules -> API and blueprints -> request lifecycle -> UI.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from redis import Redis

from kefu.api.extensions import init_api
from kefu.database import create_db_engine
from kefu.modules import discover_modules, load_all_models, permission_catalogue
from kefu.platform_state import EXTENSION_KEY, PlatformState
from kefu.request_context import init_request_context
from kefu.settings import REPO_ROOT, Settings


def resolve_services(settings: Settings) -> Settings:
    """Start the embedded PostgreSQL and Redis for whichever URL is not set."""
    if settings.database_url and settings.redis_url:
        return settings
    from kefu import embedded

    database_url = settings.database_url or embedded.start_postgres(settings.data_dir)
    redis_url = settings.redis_url or embedded.start_redis(settings.data_dir)
    return settings.with_services(database_url, redis_url)


def create_app(settings: Settings | None = None) -> Flask:
    settings = resolve_services(settings or Settings.from_env())
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)

    app = Flask(
        __name__,
        root_path=str(REPO_ROOT),
        instance_path=str(settings.data_dir / "instance"),
        template_folder=str(REPO_ROOT / "admin_ui" / "templates"),
        static_folder=str(REPO_ROOT / "admin_ui" / "static"),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        JSON_SORT_KEYS=False,
    )
    app.json.ensure_ascii = False  # Chinese text stays readable in responses

    load_all_models()
    modules = discover_modules()
    state = PlatformState(
        settings=settings,
        engine=create_db_engine(settings),
        redis=Redis.from_url(settings.redis_url),
        modules=modules,
        catalogue=permission_catalogue(modules),
    )
    app.extensions[EXTENSION_KEY] = state

    api = init_api(app)
    _register_blueprints(app, api, state)
    _document_events(api, state)
    init_request_context(app)
    return app


def _document_events(api: Any, state: PlatformState) -> None:
    """The webhook event catalogue as an OpenAPI schema (see docs/webhooks.md)."""
    catalogue = {name: text for m in state.modules.values() for name, text in m.events.items()}
    api.spec.components.schema(
        "WebhookEvent",
        {
            "type": "object",
            "description": "Body of every webhook delivery. Events:\n"
            + "\n".join(f"- `{name}`: {text}" for name, text in sorted(catalogue.items())),
            "required": ["id", "event", "version", "tenant", "occurred_at", "data"],
            "properties": {
                "id": {"type": "integer", "description": "Event id (idempotency key)"},
                "event": {"type": "string", "enum": sorted(catalogue)},
                "version": {"type": "integer"},
                "tenant": {"type": "string"},
                "occurred_at": {"type": "string", "format": "date-time"},
                "data": {"type": "object"},
            },
        },
    )


def _register_blueprints(app: Flask, api, state: PlatformState) -> None:
    from kefu import health, ui
    from kefu.access.api import blp as auth_blp
    from kefu.access.platform_api import blp as platform_access_blp
    from kefu.tenancy.api import blp as platform_tenants_blp

    app.register_blueprint(health.blp)
    app.register_blueprint(ui.blp)
    api.register_blueprint(auth_blp, url_prefix="/api/auth/v1")
    api.register_blueprint(platform_tenants_blp, url_prefix="/api/platform/v1/tenants")
    api.register_blueprint(platform_access_blp, url_prefix="/api/platform/v1")
    for name, module in state.modules.items():
        if module.blueprint is not None:
            api.register_blueprint(module.blueprint, url_prefix=f"/api/v1/{name}")
            state.blueprint_modules[module.blueprint.name] = name
        if module.platform_blueprint is not None:
            api.register_blueprint(
                module.platform_blueprint, url_prefix=f"/api/platform/v1/modules/{name}"
            )
        if module.resolve_agent is not None:
            state.resolve_agent = module.resolve_agent
