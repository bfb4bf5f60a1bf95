"""Tenant lifecycle: provisioning, status changes, modules, deletion.

Provisioning is one transaction: registry row, CREATE SCHEMA, `create_all` of
the tenant metadata and the Alembic stamp commit together or not at all.
`tests/test_schema_drift.py` proves `create_all` + stamp equals running every
tenant migration from base.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import Session

from kefu import audit
from kefu.api.errors import ApiError, Conflict, NotFound, ValidationFailed
from kefu.database import TenantBase, quote_identifier, schema_for_slug, shared_session
from kefu.schema.alembic import stamp_tenant_schema
from kefu.tenancy.models import Tenant, TenantStatus
from kefu.tenancy.slugs import slug_problem

MAX_DISPLAY_NAME = 200


@dataclass(frozen=True)
class TenantSpec:
    slug: str
    display_name: str
    modules: list[str]
    settings: dict[str, Any]


def validate_modules(modules: Iterable[str], known: Collection[str]) -> list[str]:
    chosen = list(dict.fromkeys(modules))
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise ValidationFailed(
            "modules",
            f"unknown module(s) {', '.join(unknown)}; available: {', '.join(sorted(known))}",
        )
    return chosen


def validate_spec(spec: TenantSpec, known_modules: Collection[str]) -> TenantSpec:
    problem = slug_problem(spec.slug)
    if problem:
        raise ValidationFailed("slug", problem)
    name = (spec.display_name or "").strip()
    if not name or len(name) > MAX_DISPLAY_NAME:
        raise ValidationFailed("display_name", f"must be 1 to {MAX_DISPLAY_NAME} characters")
    modules = validate_modules(spec.modules, known_modules)
    return TenantSpec(spec.slug, name, modules, dict(spec.settings))


def create_tenant_schema(connection: Connection, schema: str, migrations_dir: Path) -> str:
    """CREATE SCHEMA, every tenant table, and the Alembic stamp; returns the revision."""
    connection.execute(text(f"CREATE SCHEMA {quote_identifier(connection, schema)}"))
    translated = connection.execution_options(schema_translate_map={None: schema})
    TenantBase.metadata.create_all(translated, checkfirst=False)
    return stamp_tenant_schema(connection, migrations_dir, schema)


def _run_provisioners(connection: Connection, schema: str) -> None:
    """Module hooks (e.g. default roles) inside the provisioning transaction."""
    from kefu.modules import discover_modules, permission_catalogue

    modules = discover_modules()
    catalogue = permission_catalogue(modules)
    translated = connection.execution_options(schema_translate_map={None: schema})
    tenant_db = Session(bind=translated)
    for module in modules.values():
        if module.provision is not None:
            module.provision(tenant_db, catalogue)
    tenant_db.flush()
    tenant_db.close()


def create_tenant(
    engine: Engine,
    spec: TenantSpec,
    *,
    known_modules: Collection[str],
    migrations_dir: Path,
    actor: str,
) -> Tenant:
    spec = validate_spec(spec, known_modules)
    with engine.connect() as connection, connection.begin():
        session = Session(bind=connection, expire_on_commit=False)
        if session.scalar(select(Tenant.id).where(Tenant.slug == spec.slug)) is not None:
            raise Conflict(f"Tenant {spec.slug} already exists.", code="tenant_exists")
        tenant = Tenant(
            slug=spec.slug,
            display_name=spec.display_name,
            status=TenantStatus.active,
            modules=spec.modules,
            settings=spec.settings,
        )
        session.add(tenant)
        try:
            session.flush()
            tenant.schema_revision = create_tenant_schema(connection, tenant.schema, migrations_dir)
            _run_provisioners(connection, tenant.schema)
        except (IntegrityError, ProgrammingError) as exc:
            if "already exists" in str(exc.orig):
                raise Conflict(f"Tenant {spec.slug} already exists.", code="tenant_exists") from exc
            raise
        audit.record(
            session,
            actor=actor,
            action="tenant.created",
            tenant_slug=spec.slug,
            details={"modules": spec.modules},
        )
        session.flush()
        session.close()
    return tenant


def get_tenant(session: Session, slug: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"Tenant {slug} does not exist.", code="tenant_not_found")
    return tenant


def list_tenants(session: Session, status: TenantStatus | None = None) -> list[Tenant]:
    query = select(Tenant).order_by(Tenant.slug)
    if status is not None:
        query = query.where(Tenant.status == status)
    return list(session.scalars(query))


# Allowed status changes: action -> (statuses it may start from, resulting status).
TRANSITIONS: dict[str, tuple[frozenset[TenantStatus], TenantStatus]] = {
    "suspend": (frozenset({TenantStatus.active}), TenantStatus.suspended),
    "resume": (frozenset({TenantStatus.suspended, TenantStatus.archived}), TenantStatus.active),
    "archive": (frozenset({TenantStatus.active, TenantStatus.suspended}), TenantStatus.archived),
}


def change_status(session: Session, slug: str, action: str, *, actor: str) -> Tenant:
    tenant = get_tenant(session, slug)
    allowed_from, target = TRANSITIONS[action]
    if tenant.status == target:
        return tenant
    if tenant.status not in allowed_from:
        raise ApiError(
            f"Cannot {action} tenant {slug} while it is {tenant.status.value}.",
            code="invalid_status_transition",
            status=409,
        )
    before = tenant.status.value
    tenant.status = target
    audit.record(
        session,
        actor=actor,
        action=f"tenant.{action}",
        tenant_slug=slug,
        details={"from": before, "to": target.value},
    )
    return tenant


def update_tenant(
    session: Session,
    slug: str,
    *,
    actor: str,
    known_modules: Collection[str],
    display_name: str | None = None,
    modules: list[str] | None = None,
    settings: dict[str, Any] | None = None,
) -> Tenant:
    tenant = get_tenant(session, slug)
    changes: dict[str, Any] = {}
    if display_name is not None:
        name = display_name.strip()
        if not name or len(name) > MAX_DISPLAY_NAME:
            raise ValidationFailed("display_name", f"must be 1 to {MAX_DISPLAY_NAME} characters")
        changes["display_name"] = [tenant.display_name, name]
        tenant.display_name = name
    if modules is not None:
        chosen = validate_modules(modules, known_modules)
        changes["modules"] = [list(tenant.modules), chosen]
        tenant.modules = chosen
    if settings is not None:
        changes["settings"] = {"keys": sorted(settings)}
        tenant.settings = {**tenant.settings, **settings}
    if changes:
        audit.record(
            session, actor=actor, action="tenant.updated", tenant_slug=slug, details=changes
        )
    return tenant


def set_module_enabled(
    session: Session,
    slug: str,
    module: str,
    enabled: bool,
    *,
    actor: str,
    known_modules: Collection[str],
) -> Tenant:
    tenant = get_tenant(session, slug)
    validate_modules([module], known_modules)
    current = list(tenant.modules)
    if enabled and module not in current:
        current.append(module)
    if not enabled and module in current:
        current.remove(module)
    return update_tenant(session, slug, actor=actor, known_modules=known_modules, modules=current)


def delete_tenant(engine: Engine, slug: str, *, actor: str) -> None:
    """Drop an archived tenant's schema and registry row, in one transaction."""
    with engine.connect() as connection, connection.begin():
        session = Session(bind=connection)
        tenant = get_tenant(session, slug)
        if tenant.status != TenantStatus.archived:
            raise ApiError(
                f"Tenant {slug} must be archived before it can be deleted.",
                code="tenant_not_archived",
                status=409,
            )
        schema = schema_for_slug(slug)
        connection.execute(
            text(f"DROP SCHEMA IF EXISTS {quote_identifier(connection, schema)} CASCADE")
        )
        session.delete(tenant)
        audit.record(session, actor=actor, action="tenant.deleted", tenant_slug=slug)
        session.flush()
        session.close()


def tenant_by_slug(engine: Engine, slug: str) -> Tenant:
    with shared_session(engine) as session:
        return get_tenant(session, slug)
