"""Engine, declarative bases and units of work for both planes.

Two metadata objects keep the planes apart:

* `SharedBase` tables live in the `kefu_platform` schema (tenant registry,
  accounts, API keys, audit).
* `TenantBase` tables have no schema. A tenant unit of work binds its session
  to `schema_translate_map={None: <tenant schema>}` and issues
  `SET LOCAL search_path` when each transaction begins, so ORM statements and
  hand-written `text()` SQL both resolve to that tenant only. Nothing ever sets
  a session-level search_path on a pooled connection.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Engine, MetaData, create_engine, event, func
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from kefu.settings import Settings

log = logging.getLogger(__name__)
SHARED_SCHEMA = "kefu_platform"
TENANT_SCHEMA_PREFIX = "tenant_"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class SharedBase(DeclarativeBase):
    metadata = MetaData(schema=SHARED_SCHEMA, naming_convention=NAMING_CONVENTION)


class TenantBase(DeclarativeBase):
    """Base for every table that exists once per tenant schema."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def bigint_pk() -> Mapped[int]:
    return mapped_column(BigInteger, primary_key=True, autoincrement=True)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


def updated_at_column() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=utcnow
    )


def sqlalchemy_url(url: str) -> str:
    """Normalise a postgresql:// URL to the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(settings: Settings, *, pool_size: int | None = None) -> Engine:
    engine = create_engine(
        sqlalchemy_url(settings.database_url),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_pool_max_overflow if pool_size is None else 0,
        pool_recycle=settings.db_pool_recycle_seconds,
        pool_pre_ping=True,
    )
    _limit_connection_uses(engine, settings.db_pool_max_uses)
    _dispose_in_forked_children(engine)
    return engine


def _limit_connection_uses(engine: Engine, max_uses: int) -> None:
    """Retire a pooled connection after `max_uses` checkouts.

    A PostgreSQL backend caches catalog entries for every schema it touches; with
    thousands of tenant schemas a long-lived connection grows without bound.
    """

    @event.listens_for(engine, "checkout")
    def _count_use(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        uses = record.info.get("kefu_uses", 0) + 1
        record.info["kefu_uses"] = uses
        if uses > max_uses:
            record.info["kefu_uses"] = 0
            record.invalidate()
            raise DisconnectionError("connection reached its use limit")


def _dispose_in_forked_children(engine: Engine) -> None:
    """A forked RQ work-horse must not reuse its parent's sockets."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))


def schema_for_slug(slug: str) -> str:
    return f"{TENANT_SCHEMA_PREFIX}{slug}"


def quote_identifier(engine_or_conn: Engine | Connection, name: str) -> str:
    return engine_or_conn.dialect.identifier_preparer.quote_identifier(name)


def set_local_search_path(connection: Connection, schema: str) -> None:
    """Scope search_path to the current transaction only (never the session)."""
    path = f"{quote_identifier(connection, schema)}, public"
    connection.exec_driver_sql("SELECT set_config('search_path', %s, true)", (path,))


class TenantSession(Session):
    """A Session whose every transaction is pinned to one tenant schema."""


@event.listens_for(TenantSession, "after_begin")
def _pin_search_path(session: Session, transaction: Any, connection: Connection) -> None:
    set_local_search_path(connection, session.info["tenant_schema"])


def tenant_session(engine: Engine, schema: str) -> TenantSession:
    bound = engine.execution_options(schema_translate_map={None: schema})
    session = TenantSession(bind=bound, expire_on_commit=False, autoflush=True)
    session.info["tenant_schema"] = schema
    return session


def tenant_slug_of(session: Session) -> str:
    """The tenant a TenantSession is pinned to."""
    return session.info["tenant_schema"].removeprefix(TENANT_SCHEMA_PREFIX)


def shared_session(engine: Engine) -> Session:
    return Session(bind=engine, expire_on_commit=False)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once `session`'s transaction commits (never on rollback).

    The single mechanism for follow-up work (enqueue a job, write the audit
    record, bump a cache version): in requests, jobs and CLI commands alike.
    A failing callback is logged, not raised: the data is already committed.
    """

    def committed(_: Session) -> None:
        try:
            callback()
        except Exception:
            log.exception("follow-up after commit failed")

    event.listen(session, "after_commit", committed, once=True)


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """Commit when the block succeeds, roll back when it raises; always close."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
