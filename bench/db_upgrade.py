"""`kefu db upgrade` over many tenants: kefu.schema.upgrade.upgrade_tenants.

Provisions N tenants (default 1000) with create_tenant and prints how long that took.
Then times:

(a) upgrade_tenants with nothing to apply (every schema already at head);
(b) upgrade_tenants applying one trivial tenant revision ("9001": add a nullable
    customers.bench_note column), written into a /tmp copy of the migrations folder,
    with --concurrency worker processes (default 4).

and prints per-status counts and any failures.

Targets (2-core machine): (a) < 10 s, (b) < 60 s.

    python -m bench.db_upgrade [--tenants 1000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text
from tqdm import tqdm

from bench.common import Bench, bench_environment, provision_tenants, target_line, timed
from kefu.schema.alembic import alembic_config
from kefu.schema.upgrade import TenantUpgradeResult, upgrade_tenants
from kefu.settings import Settings

NOOP_TARGET = 10.0
APPLY_TARGET = 60.0
BENCH_REVISION = "9001"
REVISION_TEMPLATE = '''"""bench: add customers.bench_note

Revision ID: {revision}
Revises: {down_revision}
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("bench_note", sa.String(50)))


def downgrade() -> None:
    op.drop_column("customers", "bench_note")
'''


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000, help="tenants to provision")
    parser.add_argument("--concurrency", type=int, default=4, help="upgrade worker processes")
    return parser.parse_args()


def seconds(value: float) -> str:
    return f"{value:.2f} s"


def migrations_with_bench_revision(settings: Settings, work_dir: Path) -> Path:
    """A copy of the migrations folder with one extra tenant revision on top of head."""
    copy = work_dir / "migrations"
    shutil.copytree(
        settings.migrations_dir, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    # Uncached on purpose: script_directory() would remember the head before 9001 exists.
    head = ScriptDirectory.from_config(alembic_config(copy, "tenant")).get_current_head()
    path = copy / "tenant" / "versions" / f"{BENCH_REVISION}_bench_note.py"
    path.write_text(REVISION_TEMPLATE.format(revision=BENCH_REVISION, down_revision=head))
    print(f"bench revision {BENCH_REVISION} (revises {head}) in {copy}")
    return copy


def run_upgrade(
    bench: Bench, settings: Settings, args: argparse.Namespace, desc: str
) -> tuple[list[TenantUpgradeResult], float]:
    with tqdm(desc=desc, unit="tenant", total=args.tenants) as bar:
        return timed(
            lambda: upgrade_tenants(
                bench.engine,
                settings,
                concurrency=args.concurrency,
                on_result=lambda _: bar.update(),
            )
        )


def report(
    label: str, results: Sequence[TenantUpgradeResult], elapsed: float, limit: float
) -> None:
    counts = Counter(result.status for result in results)
    print(target_line(label, elapsed, limit, seconds))
    print(f"  statuses: {dict(sorted(counts.items()))}")
    failures = [result for result in results if not result.ok]
    for failure in failures[:20]:
        print(f"  FAILED {failure.slug}: {failure.error}")
    if len(failures) > 20:
        print(f"  ... and {len(failures) - 20} more failures")
    upgraded = [result.seconds for result in results if result.status == "upgraded"]
    if upgraded:
        mean = sum(upgraded) / len(upgraded)
        print(f"  per upgraded tenant (in its worker): mean {mean * 1000:.1f} ms")


def count_bench_columns(bench: Bench) -> int:
    with bench.engine.connect() as connection:
        query = text(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'customers' AND column_name = 'bench_note'"
        )
        return int(connection.execute(query).scalar_one())


def main() -> None:
    args = parse_args()
    with bench_environment() as bench:
        _, provisioning = timed(lambda: provision_tenants(bench, 0, args.tenants, "provision"))
        print(f"provisioned {args.tenants} tenants in {seconds(provisioning)}")
        noop = run_upgrade(bench, bench.settings, args, "upgrade (no-op)")
        copy = migrations_with_bench_revision(bench.settings, bench.work_dir)
        settings = replace(bench.settings, migrations_dir=copy)
        applied = run_upgrade(bench, settings, args, f"upgrade {BENCH_REVISION}")
        print()
        print(f"tenants: {args.tenants}, concurrency: {args.concurrency}")
        report("(a) upgrade, nothing to apply", *noop, NOOP_TARGET)
        report(f"(b) upgrade, apply {BENCH_REVISION}", *applied, APPLY_TARGET)
        print(f"  schemas with customers.bench_note: {count_bench_columns(bench)}")


if __name__ == "__main__":
    main()
