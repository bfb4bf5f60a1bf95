"""Tenant provisioning latency: kefu.tenancy.service.create_tenant versus raw DDL.

Provisions N tenants (default 200) with create_tenant, timing each call (wall clock),
and prints median, p95 and max. Then runs the same tenant DDL (CREATE SCHEMA, every
TenantBase table and index, the alembic_version table and its row) for ~50 fresh
schemas two ways, each schema in its own transaction:

* `psql -X -q -1 -f file` (wall clock of the subprocess, so psql start-up is included);
* one raw psycopg connection, one statement at a time (DDL cost without process start).

and prints both medians and the ratio of create_tenant's median to each. The raw runs
are DDL only: create_tenant also inserts the registry and audit rows and runs the
module provisioners (e.g. default roles) in the same transaction.

Targets (2-core machine): create_tenant median < 300 ms, p95 < 600 ms.

    python -m bench.tenant_creation [--tenants 200] [--ddl-runs 50]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

import psycopg
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateSchema, CreateTable, ExecutableDDLElement
from tqdm import tqdm

from bench.common import (
    Bench,
    bench_environment,
    latency_summary,
    ms,
    percentile,
    provision_tenants,
    target_line,
    timed,
)
from kefu.database import TenantBase
from kefu.schema.alembic import VERSION_TABLE, head_revision

MEDIAN_TARGET = 0.300
P95_TARGET = 0.600
PSQL = shutil.which("psql") or "/usr/bin/psql"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=200, help="create_tenant calls to time")
    parser.add_argument("--ddl-runs", type=int, default=50, help="fresh schemas per raw DDL way")
    return parser.parse_args()


def _compile(element: ExecutableDDLElement, schema: str) -> str:
    compiled = element.compile(
        dialect=postgresql.dialect(),
        schema_translate_map={None: schema},
        render_schema_translate=True,
    )
    return str(compiled).strip()


def tenant_ddl(schema: str, revision: str) -> list[str]:
    """The statements create_tenant_schema issues, as plain SQL for one schema."""
    statements = [_compile(CreateSchema(schema), schema)]
    for table in TenantBase.metadata.sorted_tables:
        statements.append(_compile(CreateTable(table), schema))
        statements.extend(_compile(CreateIndex(index), schema) for index in table.indexes)
    version_table = f"{schema}.{VERSION_TABLE}"
    statements.append(
        f"CREATE TABLE {version_table} (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    )
    statements.append(f"INSERT INTO {version_table} (version_num) VALUES ('{revision}')")
    return statements


def time_psql(bench: Bench, schemas: Sequence[str], revision: str) -> list[float]:
    folder = bench.work_dir / "ddl"
    folder.mkdir(exist_ok=True)
    seconds = []
    for schema in tqdm(schemas, desc="psql -1 -f", unit="schema"):
        script = folder / f"{schema}.sql"
        script.write_text(";\n".join(tenant_ddl(schema, revision)) + ";\n")
        _, elapsed = timed(lambda s=script: _run_psql(bench.libpq_url, s))
        seconds.append(elapsed)
    return seconds


def _run_psql(url: str, script: Path) -> None:
    command = [PSQL, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(script)]
    subprocess.run(command, check=True, capture_output=True)


def time_psycopg(bench: Bench, schemas: Sequence[str], revision: str) -> list[float]:
    seconds = []
    with psycopg.connect(bench.libpq_url) as connection:
        for schema in tqdm(schemas, desc="psycopg txn", unit="schema"):
            statements = tenant_ddl(schema, revision)
            _, elapsed = timed(lambda s=statements: _run_in_transaction(connection, s))
            seconds.append(elapsed)
    return seconds


def _run_in_transaction(connection: psycopg.Connection, statements: Sequence[str]) -> None:
    with connection.transaction():
        for statement in statements:
            connection.execute(statement)


def report_create_tenant(seconds: Sequence[float]) -> None:
    print()
    print(latency_summary("create_tenant", seconds))
    print(f"{'  first call (cold caches)':<28} {ms(seconds[0])}")
    print(target_line("create_tenant median", statistics.median(seconds), MEDIAN_TARGET, ms))
    print(target_line("create_tenant p95", percentile(seconds, 95), P95_TARGET, ms))


def report_raw(create: Sequence[float], psql: Sequence[float], raw: Sequence[float]) -> None:
    create_median = statistics.median(create)
    print()
    print(latency_summary("psql -X -q -1 -f (DDL only)", psql))
    print(latency_summary("psycopg txn (DDL only)", raw))
    print(f"ratio create_tenant / psql median:    {create_median / statistics.median(psql):.2f}x")
    print(f"ratio create_tenant / psycopg median: {create_median / statistics.median(raw):.2f}x")


def main() -> None:
    args = parse_args()
    with bench_environment() as bench:
        revision = head_revision(bench.settings.migrations_dir, "tenant")
        statements = len(tenant_ddl("tenant_probe", revision))
        print(f"tenant DDL: {statements} statements per schema (revision {revision})")
        create = provision_tenants(bench, 0, args.tenants, "create_tenant")
        psql = time_psql(bench, [f"raw_psql_{i:04d}" for i in range(args.ddl_runs)], revision)
        raw = time_psycopg(bench, [f"raw_pg_{i:04d}" for i in range(args.ddl_runs)], revision)
        report_create_tenant(create)
        report_raw(create, psql, raw)


if __name__ == "__main__":
    main()
