"""`kefu db upgrade`: the shared schema, then every tenant schema.

Design points (django-tenants' issue tracker is the list of what to avoid):

* Current revisions are read for all tenants in a few UNION queries, so a run
  with nothing to apply costs milliseconds per hundred tenants, not an Alembic
  start-up per schema.
* Schemas that are behind are migrated by a bounded pool of worker processes
  (Alembic's `op` and `context` proxies are process-global, so threads would
  trample each other). Each tenant runs in its own transaction and records its
  new revision in the registry in that same transaction.
* A failing tenant is reported with its error and never stops the others; a
  re-run simply finds which schemas are still behind, so it resumes.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from kefu.database import quote_identifier, schema_for_slug, shared_session
from kefu.schema.alembic import VERSION_TABLE, head_revision, schema_revision, upgrade_tenant_schema
from kefu.settings import Settings
from kefu.tenancy.models import Tenant

REVISION_QUERY_CHUNK = 200


@dataclass(frozen=True)
class TenantUpgradeResult:
    slug: str
    from_revision: str | None
    to_revision: str | None
    status: str  # "upgraded", "current" or "failed"
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def tenant_slugs(engine: Engine) -> list[str]:
    with shared_session(engine) as session:
        return list(session.scalars(select(Tenant.slug).order_by(Tenant.slug)))


def _revision_chunk(engine: Engine, slugs: Sequence[str]) -> dict[str, str | None]:
    parts = []
    params: dict[str, str] = {}
    for index, slug in enumerate(slugs):
        table = f"{quote_identifier(engine, schema_for_slug(slug))}.{VERSION_TABLE}"
        params[f"s{index}"] = slug
        parts.append(f"SELECT CAST(:s{index} AS text) AS slug, version_num FROM {table}")
    with engine.connect() as connection:
        rows = connection.execute(text(" UNION ALL ".join(parts)), params).all()
    found: dict[str, str | None] = dict.fromkeys(slugs)
    found.update({slug: revision for slug, revision in rows})
    return found


def current_revisions(engine: Engine, slugs: Sequence[str]) -> dict[str, str | None]:
    """Each tenant's recorded revision; None where the schema has no version table."""
    revisions: dict[str, str | None] = {}
    for start in range(0, len(slugs), REVISION_QUERY_CHUNK):
        chunk = slugs[start : start + REVISION_QUERY_CHUNK]
        try:
            revisions.update(_revision_chunk(engine, chunk))
        except SQLAlchemyError:
            # One broken schema fails the whole UNION; look at this chunk one by one.
            with engine.connect() as connection:
                for slug in chunk:
                    try:
                        revisions[slug] = schema_revision(connection, schema_for_slug(slug))
                    except SQLAlchemyError:
                        connection.rollback()
                        revisions[slug] = None
    return revisions


def upgrade_one_tenant(engine: Engine, migrations_dir: Path, slug: str) -> TenantUpgradeResult:
    started = time.perf_counter()
    schema = schema_for_slug(slug)
    before: str | None = None
    try:
        with engine.connect() as connection, connection.begin():
            before = schema_revision(connection, schema)
            if before is None:
                raise RuntimeError(f"schema {schema} has no {VERSION_TABLE} table; re-provision it")
            upgrade_tenant_schema(connection, migrations_dir, schema)
            after = schema_revision(connection, schema)
            connection.execute(
                update(Tenant).where(Tenant.slug == slug).values(schema_revision=after)
            )
    except Exception as exc:  # reported per tenant; the run goes on
        return _failed(slug, before, exc, time.perf_counter() - started)
    return TenantUpgradeResult(slug, before, after, "upgraded", None, time.perf_counter() - started)


def error_text(exc: BaseException) -> str:
    """`Type: first line of the message`; just the type when the message is empty."""
    detail = str(getattr(exc, "orig", None) or exc).strip()
    first_line = detail.splitlines()[0][:500] if detail else ""
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def _failed(
    slug: str, revision: str | None, exc: BaseException, seconds: float = 0.0
) -> TenantUpgradeResult:
    return TenantUpgradeResult(slug, revision, revision, "failed", error_text(exc), seconds)


# --- worker processes -------------------------------------------------------------

_worker_engine: Engine | None = None
_worker_migrations: Path | None = None


def _init_worker(settings: Settings) -> None:
    global _worker_engine, _worker_migrations
    from kefu.database import create_db_engine
    from kefu.modules import load_all_models

    load_all_models()
    _worker_engine = create_db_engine(settings, pool_size=1)
    _worker_migrations = settings.migrations_dir


def _upgrade_in_worker(slug: str) -> TenantUpgradeResult:
    assert _worker_engine is not None and _worker_migrations is not None
    return upgrade_one_tenant(_worker_engine, _worker_migrations, slug)


def _refresh_registry(engine: Engine, slugs: list[str], head: str) -> None:
    """Tenants found at head get their registry revision corrected if it was stale."""
    if not slugs:
        return
    with engine.begin() as connection:
        connection.execute(
            update(Tenant)
            .where(Tenant.slug.in_(slugs), Tenant.schema_revision.is_distinct_from(head))
            .values(schema_revision=head)
        )


def upgrade_tenants(
    engine: Engine,
    settings: Settings,
    *,
    slugs: Iterable[str] | None = None,
    concurrency: int | None = None,
    on_result: Callable[[TenantUpgradeResult], None] = lambda result: None,
) -> list[TenantUpgradeResult]:
    known = tenant_slugs(engine)
    chosen = sorted(set(slugs)) if slugs is not None else known
    head = head_revision(settings.migrations_dir, "tenant")
    results: list[TenantUpgradeResult] = []
    for slug in sorted(set(chosen) - set(known)):
        result = TenantUpgradeResult(slug, None, None, "failed", "no such tenant")
        results.append(result)
        on_result(result)
    chosen = [slug for slug in chosen if slug in set(known)]
    revisions = current_revisions(engine, chosen)
    pending: list[str] = []
    for slug in chosen:
        if revisions[slug] == head:
            result = TenantUpgradeResult(slug, head, head, "current")
            results.append(result)
            on_result(result)
        else:
            pending.append(slug)
    _refresh_registry(engine, [slug for slug in chosen if revisions[slug] == head], head)
    workers = min(concurrency or settings.migration_concurrency, len(pending))
    if workers <= 1:
        for slug in pending:
            result = upgrade_one_tenant(engine, settings.migrations_dir, slug)
            results.append(result)
            on_result(result)
        return results
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(settings,)
    ) as pool:
        futures = {pool.submit(_upgrade_in_worker, slug): slug for slug in pending}
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:  # a worker died (BrokenProcessPool) or failed to start
                result = _failed(futures[future], revisions[futures[future]], exc)
            results.append(result)
            on_result(result)
    return results
