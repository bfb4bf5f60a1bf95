"""Alembic environment applied to every tenant schema.

Migrations here are written without a schema (`op.create_table("tickets", ...)`);
the runner passes a connection whose transaction has `search_path` set locally
to the tenant schema and whose `schema_translate_map` maps None to it, plus the
schema name in `config.attributes["tenant_schema"]`. See kefu.schema.upgrade.
"""

from alembic import context

from kefu.database import TenantBase
from kefu.modules import load_all_models

load_all_models()
config = context.config

connection = config.attributes.get("connection")
schema = config.attributes.get("tenant_schema")
if connection is None or schema is None:
    raise SystemExit(
        "The tenant environment runs through `kefu db upgrade` (or `kefu db revision "
        "--plane tenant`), which supplies the tenant schema."
    )


def include_object(obj, name, type_, reflected, compare_to):
    return not (type_ == "table" and name == "alembic_version")


context.configure(
    connection=connection,
    target_metadata=TenantBase.metadata,
    version_table_schema=schema,
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
