"""Shared set-up for the hand-run benchmarks in this package (not tests).

Each benchmark gets its own fresh PostgreSQL database, created on the server named
by KEFU_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1/postgres; the
literal `embedded` starts kefu.embedded's pgserver in a /tmp folder) and dropped at
the end, even on failure. Redis comes from KEFU_BENCH_REDIS_URL (default
redis://127.0.0.1:6379/0), with a per-run queue prefix.

Also here: provisioning tenants with kefu.tenancy.service.create_tenant, issuing a
tenant API key, and the small statistics helpers every benchmark prints with.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psycopg
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from tqdm import tqdm

from kefu import embedded
from kefu.access import api_keys
from kefu.app import create_app
from kefu.database import shared_session, unit_of_work
from kefu.modules import default_modules
from kefu.platform_state import PlatformState, platform
from kefu.schema.alembic import upgrade_shared
from kefu.settings import Settings
from kefu.tenancy import service as tenancy
from kefu.tenancy.models import Tenant

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
EMBEDDED = "embedded"
SLUG_PREFIX = "bench_"
ACTOR = "bench"

T = TypeVar("T")


@dataclass(frozen=True)
class Bench:
    """Everything a benchmark needs: the app, its platform state and the settings."""

    app: Flask
    state: PlatformState
    work_dir: Path

    @property
    def settings(self) -> Settings:
        return self.state.settings

    @property
    def engine(self) -> Engine:
        return self.state.engine

    @property
    def libpq_url(self) -> str:
        """The bench database as a plain postgresql:// URL (for psql and psycopg)."""
        return libpq_url(self.settings.database_url)


def libpq_url(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _server_url(work_dir: Path) -> str:
    """The PostgreSQL server to create the bench database on (started when `embedded`)."""
    given = os.environ.get("KEFU_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL).strip()
    return embedded.start_postgres(work_dir) if given == EMBEDDED else given


def _create_database(server_url: str) -> str:
    name = f"kefu_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(libpq_url(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _build_app(database_url: str, work_dir: Path) -> Flask:
    settings = Settings(
        environment="test",
        database_url=database_url,
        redis_url=os.environ.get("KEFU_BENCH_REDIS_URL", DEFAULT_REDIS_URL).strip(),
        data_dir=work_dir / "data",
        job_queue_prefix=f"kefubench{uuid.uuid4().hex[:8]}",
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    upgrade_shared(platform(app).engine, settings.migrations_dir)
    return app


@contextmanager
def bench_environment() -> Iterator[Bench]:
    """A fresh database with the shared schema migrated; dropped on the way out."""
    work_dir = Path(tempfile.mkdtemp(prefix="kefu-bench-", dir="/tmp"))
    is_embedded = os.environ.get("KEFU_BENCH_DATABASE_URL", "").strip() == EMBEDDED
    try:
        server_url = _server_url(work_dir)
        with _fresh_database(server_url) as database_url:
            app = _build_app(database_url, work_dir)
            try:
                state = platform(app)
                print(f"database: {make_url(database_url).database} on {server_url}")
                print(f"server:   {server_version(state.engine)}")
                yield Bench(app=app, state=state, work_dir=work_dir)
            finally:
                platform(app).engine.dispose()
    finally:
        if is_embedded:
            _stop_embedded_postgres(work_dir)
        shutil.rmtree(work_dir, ignore_errors=True)


@contextmanager
def _fresh_database(server_url: str) -> Iterator[str]:
    """Create a database on the server; yields its SQLAlchemy URL; always drops it."""
    name = _create_database(server_url)
    try:
        url = make_url(server_url).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        _drop_database(server_url, name)


def _stop_embedded_postgres(work_dir: Path) -> None:
    """Stop the pgserver that _server_url started in this process.

    kefu.embedded.stop_services cannot do it from the process that started the server:
    pgserver.get_server returns the handle cached by start_postgres, whose cleanup_mode
    is None, so its cleanup() leaves the postmaster running. (A /tmp mkdtemp folder is
    short enough that kefu.embedded keeps the socket and data under work_dir itself.)
    """
    import pgserver

    server = pgserver.get_server(work_dir / "pg", cleanup_mode="stop")
    server.cleanup_mode = "stop"
    server.cleanup()


def server_version(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.exec_driver_sql("SHOW server_version").scalar())


# --- tenants ----------------------------------------------------------------------


def slug_for(index: int) -> str:
    return f"{SLUG_PREFIX}{index:05d}"


def create_bench_tenant(bench: Bench, slug: str) -> Tenant:
    return tenancy.create_tenant(
        bench.engine,
        tenancy.TenantSpec(
            slug=slug, display_name=f"Bench {slug}", modules=default_modules(), settings={}
        ),
        known_modules=list(bench.state.modules),
        migrations_dir=bench.settings.migrations_dir,
        actor=ACTOR,
    )


def provision_tenants(bench: Bench, start: int, stop: int, desc: str) -> list[float]:
    """Create tenants slug_for(start) .. slug_for(stop - 1); seconds each (wall clock)."""
    seconds = []
    for index in tqdm(range(start, stop), desc=desc, unit="tenant"):
        _, elapsed = timed(lambda i=index: create_bench_tenant(bench, slug_for(i)))
        seconds.append(elapsed)
    return seconds


def issue_api_key(bench: Bench, tenant: Tenant) -> str:
    with unit_of_work(shared_session(bench.engine)) as session:
        return api_keys.create_api_key(session, tenant=tenant, name="bench", actor=ACTOR).secret


# --- figures ----------------------------------------------------------------------


def timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolation percentile (numpy's default), pct in 0..100."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def verdict(value: float, limit: float) -> str:
    return "PASS" if value < limit else "MISS"


def target_line(label: str, value: float, limit: float, unit: Callable[[float], str]) -> str:
    return f"{label:<28} {unit(value):>12}   target < {unit(limit):<10} {verdict(value, limit)}"


def latency_summary(label: str, seconds: Sequence[float]) -> str:
    return (
        f"{label:<28} n={len(seconds)}  median {ms(percentile(seconds, 50))}  "
        f"p95 {ms(percentile(seconds, 95))}  max {ms(max(seconds))}"
    )
