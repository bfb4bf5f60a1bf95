"""Alembic environment for the shared schema (kefu_platform).

Kefu runs this through `kefu db upgrade`, which passes an open connection in
`config.attributes["connection"]`. Run by hand (`alembic -c ...`), it connects
with KEFU_DATABASE_URL.
"""

from alembic import context
from sqlalchemy import create_engine, text

from kefu.database import SHARED_SCHEMA, SharedBase, sqlalchemy_url
from kefu.modules import load_all_models
from kefu.settings import Settings

load_all_models()
config = context.config


def include_name(name, type_, parent_names):
    # Reflect the shared (and default) schema only, never every tenant schema.
    return name in (SHARED_SCHEMA, None) if type_ == "schema" else True


def include_object(obj, name, type_, reflected, compare_to):
    return not (type_ == "table" and obj.schema not in (SHARED_SCHEMA, None))


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SharedBase.metadata,
        version_table_schema=SHARED_SCHEMA,
        include_schemas=True,
        include_name=include_name,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = create_engine(sqlalchemy_url(Settings.from_env().database_url))
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SHARED_SCHEMA}"))
        run(conn)
