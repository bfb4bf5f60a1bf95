"""Provisioning (`create_all` + stamp) must give exactly the schema that running every
tenant migration from base gives, and the migrations must match the models.

The migrated schema is built inside a transaction that is rolled back at the end, so
nothing is left behind. Catalog snapshots strip the schema name, then compare.
"""

from __future__ import annotations

import difflib
import pprint
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, text

from kefu.database import SHARED_SCHEMA, SharedBase, TenantBase, set_local_search_path
from kefu.platform_state import PlatformState
from kefu.schema.alembic import VERSION_TABLE, head_revision, upgrade_tenant_schema

Snapshot = dict[str, dict[str, Any]]

RELATIONS_SQL = """
SELECT c.relname, c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema
"""

COLUMNS_SQL = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS default,
       a.attidentity::text, a.attgenerated::text, co.collname
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation AND co.collname <> 'default'
WHERE n.nspname = :schema AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND a.attnum > 0 AND NOT a.attisdropped
"""

CONSTRAINTS_SQL = """
SELECT c.relname, con.conname, con.contype::text, pg_get_constraintdef(con.oid)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema
"""

INDEXES_SQL = """
SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = :schema
"""

SEQUENCES_SQL = """
SELECT sequencename, data_type::text, start_value, min_value, max_value,
       increment_by, cycle, cache_size
FROM pg_sequences WHERE schemaname = :schema
"""

SEQUENCE_OWNERS_SQL = """
SELECT s.relname, t.relname, a.attname, d.deptype::text
FROM pg_class s
JOIN pg_namespace n ON n.oid = s.relnamespace
JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass
                 AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE n.nspname = :schema AND s.relkind = 'S'
"""

TRIGGERS_SQL = """
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema AND NOT t.tgisinternal
"""

TYPES_SQL = """
SELECT t.typname, t.typtype::text,
       array(SELECT e.enumlabel::text FROM pg_enum e
             WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = :schema AND t.typtype IN ('e', 'd', 'r', 'm')
"""

FOREIGN_KEYS_LEAVING_SQL = """
SELECT c.relname, con.conname, rn.nspname
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class r ON r.oid = con.confrelid
JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE con.contype = 'f' AND n.nspname = :schema AND rn.nspname <> n.nspname
"""

INTEGER_KEY_COLUMNS_SQL = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (con.conkey)
WHERE n.nspname = :schema AND con.contype IN ('p', 'f')
  AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
"""


def strip_schema(value: Any, schema: str) -> Any:
    if not isinstance(value, str):
        return value
    return re.sub(rf'(?<![\w"])("{re.escape(schema)}"|{re.escape(schema)})\.', "", value)


def keyed(connection: Connection, sql: str, schema: str, key_width: int) -> dict[str, Any]:
    """Rows as {"key.parts": (rest...)} with the schema name stripped from every value."""
    found: dict[str, Any] = {}
    for row in connection.execute(text(sql), {"schema": schema}):
        values = tuple(strip_schema(value, schema) for value in row)
        rest = values[key_width:]
        found[".".join(values[:key_width])] = rest[0] if len(rest) == 1 else rest
    return found


def version_rows(connection: Connection, schema: str) -> list[str]:
    table = f'"{schema}".{VERSION_TABLE}'
    return list(connection.execute(text(f"SELECT version_num FROM {table}")).scalars())


def schema_snapshot(connection: Connection, schema: str) -> Snapshot:
    return {
        "relations": keyed(connection, RELATIONS_SQL, schema, 1),
        "columns": keyed(connection, COLUMNS_SQL, schema, 2),
        "constraints": keyed(connection, CONSTRAINTS_SQL, schema, 2),
        "indexes": keyed(connection, INDEXES_SQL, schema, 2),
        "sequences": keyed(connection, SEQUENCES_SQL, schema, 1),
        "sequence_owners": keyed(connection, SEQUENCE_OWNERS_SQL, schema, 1),
        "triggers": keyed(connection, TRIGGERS_SQL, schema, 2),
        "types": keyed(connection, TYPES_SQL, schema, 1),
        "alembic_version": {"rows": version_rows(connection, schema)},
    }


def snapshot_diff(expected: Snapshot, actual: Snapshot) -> str:
    left = pprint.pformat(expected, width=100).splitlines()
    right = pprint.pformat(actual, width=100).splitlines()
    return "\n".join(difflib.unified_diff(left, right, "provisioned", "migrated", lineterm="", n=2))


def assert_same_schema(provisioned: Snapshot, migrated: Snapshot) -> None:
    differing = [section for section in provisioned if provisioned[section] != migrated[section]]
    assert not differing, (
        f"provisioned and migrated tenant schemas differ in {differing}:\n"
        + snapshot_diff(provisioned, migrated)
    )


@pytest.fixture
def migrated_schema(state: PlatformState) -> Iterator[tuple[Connection, str]]:
    """An empty schema with every tenant migration run from base; rolled back afterwards."""
    schema = f"drift_{uuid.uuid4().hex[:12]}"
    with state.engine.connect() as connection:
        transaction = connection.begin()
        try:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            upgrade_tenant_schema(connection, state.settings.migrations_dir, schema)
            yield connection, schema
        finally:
            transaction.rollback()


def test_provisioned_schema_equals_migrated_schema(
    state: PlatformState, make_tenant, migrated_schema: tuple[Connection, str]
) -> None:
    connection, schema = migrated_schema
    tenant_schema = make_tenant().tenant.schema
    provisioned = schema_snapshot(connection, tenant_schema)
    migrated = schema_snapshot(connection, schema)

    assert {"customers", "customer_external_ids", VERSION_TABLE} <= set(provisioned["relations"])
    assert provisioned["constraints"] and provisioned["indexes"] and provisioned["sequences"]
    assert_same_schema(provisioned, migrated)
    head = head_revision(state.settings.migrations_dir, "tenant")
    assert migrated["alembic_version"] == {"rows": [head]}


def test_snapshot_comparison_notices_a_difference(
    make_tenant, migrated_schema: tuple[Connection, str]
) -> None:
    """Guards the guard: a changed length, default and index all show up."""
    connection, schema = migrated_schema
    tenant_schema = make_tenant().tenant.schema
    connection.execute(text(f'ALTER TABLE "{schema}".customers ALTER name TYPE varchar(201)'))
    connection.execute(text(f'ALTER TABLE "{schema}".customers ALTER vip_level SET DEFAULT 1'))
    connection.execute(text(f'DROP INDEX "{schema}".ix_customers_name_id'))
    provisioned = schema_snapshot(connection, tenant_schema)
    migrated = schema_snapshot(connection, schema)

    assert provisioned["columns"]["customers.name"] != migrated["columns"]["customers.name"]
    assert provisioned["columns"]["customers.vip_level"][2] is None
    assert migrated["columns"]["customers.vip_level"][2] == "1"
    assert set(provisioned["indexes"]) - set(migrated["indexes"]) == {
        "customers.ix_customers_name_id"
    }
    with pytest.raises(AssertionError, match=r"varchar|character varying\(201\)"):
        assert_same_schema(provisioned, migrated)


def test_keys_and_sequences_are_bigint_and_foreign_keys_stay_in_the_schema(
    state: PlatformState, make_tenant
) -> None:
    schema = make_tenant().tenant.schema
    with state.engine.connect() as connection:
        sequences = keyed(connection, SEQUENCES_SQL, schema, 1)
        key_columns = keyed(connection, INTEGER_KEY_COLUMNS_SQL, schema, 2)
        leaving = keyed(connection, FOREIGN_KEYS_LEAVING_SQL, schema, 2)

    assert sequences, "expected the bigint_pk sequences in a tenant schema"
    assert {name: row[0] for name, row in sequences.items() if row[0] != "bigint"} == {}
    assert "customers.id" in key_columns and "customer_external_ids.customer_id" in key_columns
    assert {column: kind for column, kind in key_columns.items() if kind != "bigint"} == {}
    assert leaving == {}, f"foreign keys leaving {schema}: {leaving}"


def alembic_differences(
    connection: Connection, metadata: MetaData, schema: str, **opts: Any
) -> list[Any]:
    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        return not (type_ == "table" and name == VERSION_TABLE)

    context = MigrationContext.configure(
        connection,
        opts={
            "include_object": include_object,
            "compare_type": True,
            "compare_server_default": True,
            "version_table_schema": schema,
            **opts,
        },
    )
    return compare_metadata(context, metadata)


def test_migrated_tenant_schema_matches_the_models(
    migrated_schema: tuple[Connection, str],
) -> None:
    connection, schema = migrated_schema
    set_local_search_path(connection, schema)
    assert alembic_differences(connection, TenantBase.metadata, schema) == []


def test_tenant_model_change_without_migration_is_detected(
    migrated_schema: tuple[Connection, str],
) -> None:
    connection, schema = migrated_schema
    connection.execute(text(f'ALTER TABLE "{schema}".customers DROP COLUMN vip_level'))
    set_local_search_path(connection, schema)
    differences = alembic_differences(connection, TenantBase.metadata, schema)
    found = [(d[0], d[2], d[3].name) for d in differences]
    assert found == [("add_column", "customers", "vip_level")]


def test_shared_schema_matches_the_models(state: PlatformState) -> None:
    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return name == SHARED_SCHEMA if type_ == "schema" else True

    with state.engine.connect() as connection, connection.begin():
        set_local_search_path(connection, SHARED_SCHEMA)
        assert (
            alembic_differences(
                connection,
                SharedBase.metadata,
                SHARED_SCHEMA,
                include_schemas=True,
                include_name=include_name,
            )
            == []
        )
