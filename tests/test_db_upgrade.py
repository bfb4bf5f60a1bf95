"""`kefu db upgrade`: one failing tenant never stops the others, and a re-run resumes.

A copy of the migrations folder gets an extra tenant revision (9001: a nullable
`customers.loyalty_note` plus an index). Tenants are provisioned at the real head,
so they are all one revision behind the copy; some are broken on purpose.

Tests on the session database touch only their own tenants (explicit slugs, or
`--tenant` for the CLI) and delete them afterwards. The full `kefu db upgrade` /
`kefu db status` run, which covers every tenant in the registry and whose exit
code depends on all of them, gets a database of its own.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url

from kefu.app import create_app
from kefu.database import schema_for_slug, shared_session, unit_of_work
from kefu.modules import default_modules
from kefu.platform_state import PlatformState, platform
from kefu.schema.alembic import head_revision, upgrade_shared
from kefu.schema.upgrade import TenantUpgradeResult, upgrade_tenants
from kefu.settings import Settings
from kefu.tenancy import service as tenancy
from kefu.tenancy.models import Tenant

NEW_REVISION = "9001"

REVISION_TEMPLATE = '''"""loyalty note on customers (written by tests/test_db_upgrade.py)"""

import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = {down_revision!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    op.drop_index("ix_customers_loyalty_note", table_name="customers")
    op.drop_column("customers", "loyalty_note")
'''

ADD_LOYALTY_NOTE = """\
    op.add_column("customers", sa.Column("loyalty_note", sa.String(length=50), nullable=True))
    op.create_index("ix_customers_loyalty_note", "customers", ["loyalty_note"])"""

# Fails without a message (str(exc) == "") in a schema that has a `boom` table.
SILENT_FAILURE = (
    """\
    if op.get_bind().execute(sa.text("SELECT to_regclass('boom')")).scalar() is not None:
        raise RuntimeError()
"""
    + ADD_LOYALTY_NOTE
)

# Kills the worker process running a schema that has a `boom` table.
WORKER_DEATH = (
    """\
    if op.get_bind().execute(sa.text("SELECT to_regclass('boom')")).scalar() is not None:
        import multiprocessing, os
        if multiprocessing.parent_process() is not None:
            os._exit(70)
        raise RuntimeError("meant to run in a worker process")
"""
    + ADD_LOYALTY_NOTE
)


@dataclass(frozen=True)
class SchemaState:
    versions: list[str]
    registry_revision: str | None
    loyalty_note_type: str | None
    loyalty_index: str | None  # "btree (loyalty_note)" once 9001 ran


UPGRADED = SchemaState(
    [NEW_REVISION], NEW_REVISION, "character varying(50)", "btree (loyalty_note)"
)


@dataclass(frozen=True)
class Clash:
    """Something already in one schema that makes revision 9001 fail there."""

    create: str
    drop: str
    error: str
    column_type: str | None = None
    index: str | None = None

    def apply(self, engine: Engine, slug: str) -> None:
        execute(engine, self.create.format(schema=schema_for_slug(slug)))

    def undo(self, engine: Engine, slug: str) -> None:
        execute(engine, self.drop.format(schema=schema_for_slug(slug)))

    def untouched(self, head: str) -> SchemaState:
        """Still at the old head with only the clashing object: 9001 was rolled back."""
        return SchemaState([head], head, self.column_type, self.index)


# ADD COLUMN, the first step, fails.
COLUMN_CLASH = Clash(
    create='ALTER TABLE "{schema}".customers ADD loyalty_note integer',
    drop='ALTER TABLE "{schema}".customers DROP loyalty_note',
    error='column "loyalty_note" of relation "customers" already exists',
    column_type="integer",
)
# CREATE INDEX, the second step, fails: the column added first must be rolled back.
INDEX_CLASH = Clash(
    create='CREATE INDEX ix_customers_loyalty_note ON "{schema}".customers (name)',
    drop='DROP INDEX "{schema}".ix_customers_loyalty_note',
    error='relation "ix_customers_loyalty_note" already exists',
    index="btree (name)",
)


def write_revision(tmp_path: Path, source: Path, body: str = ADD_LOYALTY_NOTE) -> Path:
    """A copy of the migrations folder with revision 9001 on top of the tenant head."""
    copy = tmp_path / "migrations"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    script = REVISION_TEMPLATE.format(down_revision=head_revision(source, "tenant"), body=body)
    (copy / "tenant" / "versions" / f"{NEW_REVISION}_loyalty_note.py").write_text(script)
    assert head_revision(copy, "tenant") == NEW_REVISION
    return copy


def provision(state: PlatformState, migrations_dir: Path, count: int) -> list[str]:
    """Tenants stamped at the head of `migrations_dir` (the real one: 9001 is to come)."""
    slugs = sorted(f"up_{uuid.uuid4().hex[:12]}" for _ in range(count))
    for slug in slugs:
        tenancy.create_tenant(
            state.engine,
            tenancy.TenantSpec(slug, "Upgrade test", default_modules(), {}),
            known_modules=list(state.modules),
            migrations_dir=migrations_dir,
            actor="tests",
        )
    return slugs


def delete_tenants(state: PlatformState, slugs: list[str]) -> None:
    for slug in slugs:
        with unit_of_work(shared_session(state.engine)) as session:
            tenancy.change_status(session, slug, "archive", actor="tests")
        tenancy.delete_tenant(state.engine, slug, actor="tests")


def execute(engine: Engine, sql: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql))


LOYALTY_NOTE_TYPE_SQL = """
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = to_regclass(:table) AND attname = 'loyalty_note' AND NOT attisdropped
"""
LOYALTY_INDEX_SQL = "SELECT pg_get_indexdef(to_regclass(:index))"


def schema_state(engine: Engine, slug: str) -> SchemaState:
    schema = schema_for_slug(slug)
    with engine.connect() as connection:
        versions = connection.execute(text(f'SELECT version_num FROM "{schema}".alembic_version'))
        column_type = connection.execute(
            text(LOYALTY_NOTE_TYPE_SQL), {"table": f'"{schema}".customers'}
        ).scalar()
        index = connection.execute(
            text(LOYALTY_INDEX_SQL), {"index": f'"{schema}".ix_customers_loyalty_note'}
        ).scalar()
        registry = connection.execute(
            select(Tenant.schema_revision).where(Tenant.slug == slug)
        ).scalar_one()
        index_method = index.partition(" USING ")[2] if index else None
        return SchemaState(list(versions.scalars()), registry, column_type, index_method)


def by_slug(results: list[TenantUpgradeResult]) -> dict[str, TenantUpgradeResult]:
    assert len({r.slug for r in results}) == len(results), "a tenant was reported twice"
    return {result.slug: result for result in results}


@pytest.fixture
def old_head(state: PlatformState) -> str:
    return head_revision(state.settings.migrations_dir, "tenant")


@pytest.fixture
def own_tenants(state: PlatformState) -> Iterator[list[str]]:
    """Four tenants at the real head in the session database; deleted afterwards, since
    a schema at 9001 would look broken to every later `kefu db` run."""
    slugs = provision(state, state.settings.migrations_dir, 4)
    try:
        yield slugs
    finally:
        delete_tenants(state, slugs)


@pytest.fixture
def copy_settings(state: PlatformState, tmp_path: Path) -> Settings:
    return replace(
        state.settings, migrations_dir=write_revision(tmp_path, state.settings.migrations_dir)
    )


@pytest.mark.parametrize("concurrency", [1, 2], ids=["in-process", "process-pool"])
def test_failing_tenants_are_isolated_and_a_rerun_resumes(
    state: PlatformState,
    copy_settings: Settings,
    own_tenants: list[str],
    old_head: str,
    concurrency: int,
) -> None:
    column_broken, index_broken, *healthy = own_tenants
    clashes = {column_broken: COLUMN_CLASH, index_broken: INDEX_CLASH}
    for slug, clash in clashes.items():
        clash.apply(state.engine, slug)
    reported: list[TenantUpgradeResult] = []

    first = by_slug(
        upgrade_tenants(
            state.engine,
            copy_settings,
            slugs=own_tenants,
            concurrency=concurrency,
            on_result=reported.append,
        )
    )

    assert sorted(r.slug for r in reported) == own_tenants
    for slug, clash in clashes.items():
        failure = first[slug]
        assert (failure.status, failure.ok) == ("failed", False)
        assert (failure.from_revision, failure.to_revision) == (old_head, old_head)
        assert failure.error is not None and clash.error in failure.error
        assert schema_state(state.engine, slug) == clash.untouched(old_head)
    for slug in healthy:
        assert (first[slug].status, first[slug].from_revision) == ("upgraded", old_head)
        assert first[slug].to_revision == NEW_REVISION
        assert schema_state(state.engine, slug) == UPGRADED

    for slug, clash in clashes.items():
        clash.undo(state.engine, slug)
    second = by_slug(
        upgrade_tenants(state.engine, copy_settings, slugs=own_tenants, concurrency=concurrency)
    )

    assert {slug: r.status for slug, r in second.items()} == {
        slug: "upgraded" if slug in clashes else "current" for slug in own_tenants
    }
    for slug in clashes:
        assert (second[slug].from_revision, second[slug].to_revision) == (old_head, NEW_REVISION)
    assert [schema_state(state.engine, slug) for slug in own_tenants] == [UPGRADED] * 4


@pytest.mark.parametrize("concurrency", [1, 2], ids=["in-process", "process-pool"])
def test_exception_without_message_is_reported_per_tenant(
    state: PlatformState, tmp_path: Path, own_tenants: list[str], old_head: str, concurrency: int
) -> None:
    migrations = write_revision(tmp_path, state.settings.migrations_dir, SILENT_FAILURE)
    settings = replace(state.settings, migrations_dir=migrations)
    broken, *healthy = own_tenants
    execute(state.engine, f'CREATE TABLE "{schema_for_slug(broken)}".boom ()')

    results = by_slug(
        upgrade_tenants(state.engine, settings, slugs=own_tenants, concurrency=concurrency)
    )

    assert results[broken].status == "failed"
    assert results[broken].error == "RuntimeError"
    assert [results[slug].status for slug in healthy] == ["upgraded"] * len(healthy)
    assert schema_state(state.engine, broken) == SchemaState([old_head], old_head, None, None)


def test_a_dying_worker_fails_its_tenants_without_aborting_the_run(
    state: PlatformState, tmp_path: Path, own_tenants: list[str], old_head: str
) -> None:
    migrations = write_revision(tmp_path, state.settings.migrations_dir, WORKER_DEATH)
    settings = replace(state.settings, migrations_dir=migrations)
    broken = own_tenants[0]
    execute(state.engine, f'CREATE TABLE "{schema_for_slug(broken)}".boom ()')
    behind = SchemaState([old_head], old_head, None, None)

    results = by_slug(upgrade_tenants(state.engine, settings, slugs=own_tenants, concurrency=2))

    assert sorted(results) == own_tenants
    assert results[broken].status == "failed"
    assert (results[broken].from_revision, results[broken].to_revision) == (old_head, old_head)
    assert results[broken].error is not None and "BrokenProcessPool" in results[broken].error
    assert schema_state(state.engine, broken) == behind
    for slug, result in results.items():
        # Tenants in flight when the pool broke are failed too; each is all or nothing.
        expected = [UPGRADED] if result.ok else [UPGRADED, behind]
        assert schema_state(state.engine, slug) in expected

    execute(state.engine, f'DROP TABLE "{schema_for_slug(broken)}".boom')
    rerun = by_slug(upgrade_tenants(state.engine, settings, slugs=own_tenants, concurrency=2))
    assert rerun[broken].status == "upgraded"
    assert all(result.ok for result in rerun.values())
    assert [schema_state(state.engine, slug) for slug in own_tenants] == [UPGRADED] * 4


def test_a_tenant_named_twice_is_upgraded_once(
    state: PlatformState, copy_settings: Settings, own_tenants: list[str]
) -> None:
    results = upgrade_tenants(
        state.engine, copy_settings, slugs=[*own_tenants, own_tenants[0]], concurrency=2
    )

    assert sorted(r.slug for r in results) == own_tenants
    assert [r.status for r in results] == ["upgraded"] * len(own_tenants)


def test_cli_upgrade_of_chosen_tenants_exits_1_then_0(
    state: PlatformState, copy_settings: Settings, own_tenants: list[str], old_head: str, cli
) -> None:
    """`kefu db upgrade --tenant ...` on the session app, its settings swapped for the copy."""
    broken, *healthy = own_tenants
    COLUMN_CLASH.apply(state.engine, broken)
    chosen = [arg for slug in own_tenants for arg in ("--tenant", slug)]
    real_settings, state.settings = state.settings, copy_settings
    try:
        first = cli("db", "upgrade", "--concurrency", "2", *chosen)
        COLUMN_CLASH.undo(state.engine, broken)
        second = cli("db", "upgrade", "--concurrency", "1", *chosen)
    finally:
        state.settings = real_settings

    assert first.exit_code == 1, first.output
    assert f"FAILED    {broken} (at {old_head}): ProgrammingError: {COLUMN_CLASH.error}" in (
        first.stdout
    )
    assert "tenants: 3 upgraded, 0 already current, 1 failed" in first.stdout
    assert all(
        f"upgraded  {slug}: {old_head} -> {NEW_REVISION}" in first.stdout for slug in healthy
    )
    assert second.exit_code == 0, second.output
    assert f"upgraded  {broken}: {old_head} -> {NEW_REVISION}" in second.stdout
    assert "tenants: 1 upgraded, 3 already current, 0 failed" in second.stdout
    assert [schema_state(state.engine, slug) for slug in own_tenants] == [UPGRADED] * 4


# --- the CLI, against a database of its own ------------------------------------------------


@dataclass
class IsolatedPlatform:
    state: PlatformState
    invoke: Callable[..., Result]


def server_admin_url(settings: Settings) -> str:
    url = make_url(settings.database_url).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


@pytest.fixture
def isolated(settings: Settings, tmp_path: Path) -> Iterator[IsolatedPlatform]:
    """A fresh database on the test server, an app whose migrations_dir is the copy,
    and `kefu ...` invoked in-process against that app."""
    from kefu.cli import context, main

    name = f"kefu_upgrade_{uuid.uuid4().hex[:10]}"
    admin = server_admin_url(settings)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    previous = context._app
    try:
        database_url = make_url(settings.database_url).set(database=name)
        own_settings = replace(
            settings,
            database_url=database_url.render_as_string(hide_password=False),
            migrations_dir=write_revision(tmp_path, settings.migrations_dir),
        )
        context._app = app = create_app(own_settings)
        own = platform(app)
        upgrade_shared(own.engine, own_settings.migrations_dir)
        runner = CliRunner()
        yield IsolatedPlatform(
            own, lambda *args: runner.invoke(main, list(args), catch_exceptions=False)
        )
        own.engine.dispose()
        own.redis.close()
    finally:
        context._app = previous
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_cli_upgrade_reports_the_failure_exits_1_and_resumes(
    isolated: IsolatedPlatform, settings: Settings
) -> None:
    old_head = head_revision(settings.migrations_dir, "tenant")
    engine = isolated.state.engine
    slugs = provision(isolated.state, settings.migrations_dir, 4)
    broken, *healthy = slugs
    COLUMN_CLASH.apply(engine, broken)

    status = isolated.invoke("db", "status")
    assert status.exit_code == 1
    assert all(f"{slug}: {old_head} BEHIND" in status.stdout for slug in slugs)
    assert f"tenant head {NEW_REVISION}: 0 current, 4 behind" in status.stdout

    first = isolated.invoke("db", "upgrade", "--concurrency", "2")
    assert first.exit_code == 1, first.output
    assert f"FAILED    {broken} (at {old_head}): ProgrammingError: {COLUMN_CLASH.error}" in (
        first.stdout
    )
    assert "tenants: 3 upgraded, 0 already current, 1 failed" in first.stdout
    assert "run `kefu db upgrade` again" in first.stdout
    for slug in healthy:
        assert f"upgraded  {slug}: {old_head} -> {NEW_REVISION}" in first.stdout
        assert schema_state(engine, slug) == UPGRADED
    assert schema_state(engine, broken) == COLUMN_CLASH.untouched(old_head)

    still_behind = isolated.invoke("db", "status")
    assert still_behind.exit_code == 1
    assert f"{broken}: {old_head} BEHIND" in still_behind.stdout
    assert f"tenant head {NEW_REVISION}: 3 current, 1 behind" in still_behind.stdout

    COLUMN_CLASH.undo(engine, broken)
    second = isolated.invoke("db", "upgrade", "--concurrency", "1")
    assert second.exit_code == 0, second.output
    assert f"upgraded  {broken}: {old_head} -> {NEW_REVISION}" in second.stdout
    assert "tenants: 1 upgraded, 3 already current, 0 failed" in second.stdout
    assert all(f"upgraded  {slug}" not in second.stdout for slug in healthy)
    assert [schema_state(engine, slug) for slug in slugs] == [UPGRADED] * 4

    current = isolated.invoke("db", "status")
    assert current.exit_code == 0, current.output
    assert all(f"{slug}: {NEW_REVISION} ok" in current.stdout for slug in slugs)
    assert f"tenant head {NEW_REVISION}: 4 current, 0 behind" in current.stdout


def test_unknown_tenant_is_reported_not_attempted(state) -> None:
    results = upgrade_tenants(state.engine, state.settings, slugs=["no_such_tenant_here"])
    assert [(r.slug, r.status, r.error) for r in results] == [
        ("no_such_tenant_here", "failed", "no such tenant")
    ]


def test_stale_registry_revision_is_corrected_for_current_tenants(state, make_tenant) -> None:
    handle = make_tenant()
    with unit_of_work(shared_session(state.engine)) as session:
        session.get(Tenant, handle.tenant.id).schema_revision = "stale"
    upgrade_tenants(state.engine, state.settings, slugs=[handle.slug])
    with shared_session(state.engine) as session:
        assert (
            session.get(Tenant, handle.tenant.id).schema_revision == handle.tenant.schema_revision
        )
