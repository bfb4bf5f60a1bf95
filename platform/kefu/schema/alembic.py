"""Alembic plumbing for the two environments (shared and tenant).

Script directories are loaded once per process and cached: provisioning a
tenant stamps the head revision, and `kefu db upgrade` walks hundreds of
schemas, so neither should re-read the versions folder each time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from kefu.database import SHARED_SCHEMA, quote_identifier, set_local_search_path

VERSION_TABLE = "alembic_version"


def alembic_config(migrations_dir: Path, plane: str, **attributes: Any) -> Config:
    if plane not in ("shared", "tenant"):
        raise ValueError(f"unknown migration plane {plane!r}")
    config = Config()
    config.set_main_option("script_location", str(migrations_dir / plane))
    config.attributes.update(attributes)
    return config


@cache
def script_directory(migrations_dir: Path, plane: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(migrations_dir, plane))


def head_revision(migrations_dir: Path, plane: str) -> str:
    head = script_directory(migrations_dir, plane).get_current_head()
    if head is None:
        raise RuntimeError(f"the {plane} migration environment has no revisions")
    return head


def stamp_tenant_schema(connection: Connection, migrations_dir: Path, schema: str) -> str:
    """Create the schema's alembic_version table at head (inside the caller's transaction)."""
    context = MigrationContext.configure(connection, opts={"version_table_schema": schema})
    script = script_directory(migrations_dir, "tenant")
    context.stamp(script, "head")
    return head_revision(migrations_dir, "tenant")


def schema_revision(connection: Connection, schema: str) -> str | None:
    """The revision recorded in `schema`, or None when it has no version table."""
    exists = connection.execute(
        text("SELECT to_regclass(:name) IS NOT NULL"),
        {"name": f"{quote_identifier(connection, schema)}.{VERSION_TABLE}"},
    ).scalar_one()
    if not exists:
        return None
    table = f"{quote_identifier(connection, schema)}.{VERSION_TABLE}"
    return connection.execute(text(f"SELECT version_num FROM {table}")).scalar()


def upgrade_shared(engine: Engine, migrations_dir: Path) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SHARED_SCHEMA}"))
        config = alembic_config(migrations_dir, "shared", connection=connection)
        command.upgrade(config, "head")


def upgrade_tenant_schema(connection: Connection, migrations_dir: Path, schema: str) -> None:
    """Run the tenant migrations on one schema inside the caller's transaction."""
    set_local_search_path(connection, schema)
    translated = connection.execution_options(schema_translate_map={None: schema})
    config = alembic_config(migrations_dir, "tenant", connection=translated, tenant_schema=schema)
    command.upgrade(config, "head")


REVISION_SCRATCH_SCHEMA = "kefu_revision_scratch"


def next_revision_id(migrations_dir: Path, plane: str) -> str:
    """Sequential, readable revision ids: 0001, 0002, ..."""
    revisions = list(script_directory(migrations_dir, plane).walk_revisions())
    numbers = [int(r.revision) for r in revisions if r.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


def make_revision(
    engine: Engine, migrations_dir: Path, plane: str, message: str, autogenerate: bool
) -> None:
    """Write a new migration script. Tenant autogenerate compares the models with a
    scratch schema migrated to head, inside a transaction that is rolled back."""
    rev_id = next_revision_id(migrations_dir, plane)
    script_directory.cache_clear()
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            if plane == "shared":
                connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SHARED_SCHEMA}"))
                config = alembic_config(migrations_dir, plane, connection=connection)
            else:
                connection.execute(text(f"CREATE SCHEMA {REVISION_SCRATCH_SCHEMA}"))
                upgrade_tenant_schema(connection, migrations_dir, REVISION_SCRATCH_SCHEMA)
                config = alembic_config(
                    migrations_dir,
                    plane,
                    connection=connection,
                    tenant_schema=REVISION_SCRATCH_SCHEMA,
                )
            script = command.revision(
                config, message=message, autogenerate=autogenerate, rev_id=rev_id
            )
        finally:
            transaction.rollback()
    script_directory.cache_clear()
    _format_script(getattr(script, "path", None))


def _format_script(path: str | None) -> None:
    """Generated scripts follow the project's style (ruff), when ruff is installed."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if path and Path(ruff).exists():
        subprocess.run([ruff, "format", "--quiet", path], check=False)
        subprocess.run([ruff, "check", "--fix", "--quiet", path], check=False)
