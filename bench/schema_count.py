"""Tenant API latency as the number of tenant schemas grows.

Provisions 10 tenants, gives the first one an API key and ~50 customers (created
through POST /api/v1/customers), then times GET /api/v1/customers (300 requests,
Flask test client, after a short warm-up) and prints p50/p95. Provisions more
tenants up to 2,000 in total and measures the same tenant again; prints both and the
ratio. After each measurement it prints the PostgreSQL backend memory
(pg_backend_memory_contexts, PG 14+) of the engine's pooled connections, and the
catalog size (pg_class rows). A last measurement after engine.dispose() shows the
same on fresh backends, separating catalog growth from per-backend cache growth.

There is no fixed target; the question is whether latency or backend memory grows
with the schema count (a ratio near 1.0x means it does not).

    python -m bench.schema_count [--initial 10] [--total 2000] [--customers 50]
                                 [--requests 300]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from flask.testing import FlaskClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from bench.common import (
    Bench,
    bench_environment,
    create_bench_tenant,
    issue_api_key,
    ms,
    percentile,
    provision_tenants,
    slug_for,
    timed,
)

CUSTOMERS = "/api/v1/customers"
WARM_UP_REQUESTS = 10
MEMORY_QUERY = "SELECT pg_backend_pid(), sum(total_bytes) FROM pg_backend_memory_contexts"


@dataclass(frozen=True)
class Measurement:
    label: str
    latencies: list[float]
    backend_bytes: dict[int, int]  # pid -> bytes, for each pooled connection
    catalog_relations: int

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 95)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--initial", type=int, default=10, help="tenants at the first measure")
    parser.add_argument("--total", type=int, default=2000, help="tenants at the second measure")
    parser.add_argument("--customers", type=int, default=50, help="customers in the tenant")
    parser.add_argument("--requests", type=int, default=300, help="timed GETs per measurement")
    return parser.parse_args()


def add_customers(client: FlaskClient, headers: dict[str, str], count: int) -> None:
    for index in tqdm(range(count), desc="customers", unit="customer"):
        body = {
            "name": f"客户 Customer {index:03d}",
            "emails": [f"customer{index}@example.cn"],
            "tags": ["bench", "vip" if index % 5 == 0 else "standard"],
            "attributes": {"城市": "上海", "orders": index},
            "vip_level": index % 4,
        }
        response = client.post(CUSTOMERS, json=body, headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"POST {CUSTOMERS} failed: {response.status_code} {response.json}")


def list_customers(client: FlaskClient, headers: dict[str, str], expected: int) -> None:
    response = client.get(CUSTOMERS, headers=headers)
    if response.status_code != 200 or len(response.json["items"]) != expected:
        raise RuntimeError(f"GET {CUSTOMERS} failed: {response.status_code} {response.json}")


def time_requests(
    client: FlaskClient, headers: dict[str, str], requests: int, expected: int
) -> list[float]:
    for _ in range(WARM_UP_REQUESTS):
        list_customers(client, headers, expected)
    return [
        timed(lambda: list_customers(client, headers, expected))[1]
        for _ in tqdm(range(requests), desc=f"GET {CUSTOMERS}", unit="req")
    ]


def pooled_backend_memory(engine: Engine) -> dict[int, int]:
    """Memory-context total of every connection now idle in the pool (empty before PG 14)."""
    connections = [engine.connect() for _ in range(max(1, engine.pool.checkedin()))]
    found: dict[int, int] = {}
    try:
        for connection in connections:
            pid, total = connection.execute(text(MEMORY_QUERY)).one()
            found[int(pid)] = int(total or 0)
    except SQLAlchemyError as exc:
        print(f"backend memory not measurable: {type(exc).__name__}")
    finally:
        for connection in connections:
            connection.close()
    return found


def catalog_relations(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM pg_class")).scalar_one())


def measure(
    bench: Bench, label: str, headers: dict[str, str], args: argparse.Namespace
) -> Measurement:
    client = bench.app.test_client()
    expected = min(args.customers, 50)  # the default page size
    latencies = time_requests(client, headers, args.requests, expected)
    measurement = Measurement(
        label, latencies, pooled_backend_memory(bench.engine), catalog_relations(bench.engine)
    )
    print(describe(measurement))
    return measurement


def mib(value: int) -> str:
    return f"{value / 1024 / 1024:.1f} MiB"


def describe(measurement: Measurement) -> str:
    memory = measurement.backend_bytes
    backends = (
        f"{len(memory)} pooled backend(s) max {mib(max(memory.values()))}"
        if memory
        else "backend memory n/a"
    )
    return (
        f"{measurement.label:<30} p50 {ms(measurement.p50):>9}  p95 {ms(measurement.p95):>9}  "
        f"{backends}  pg_class rows {measurement.catalog_relations}"
    )


def report(first: Measurement, later: Sequence[Measurement]) -> None:
    print()
    print(describe(first))
    for measurement in later:
        print(describe(measurement))
        print(
            f"  ratio vs {first.label.strip()}: p50 {measurement.p50 / first.p50:.2f}x, "
            f"p95 {measurement.p95 / first.p95:.2f}x"
            + memory_ratio(first.backend_bytes, measurement.backend_bytes)
        )


def memory_ratio(before: dict[int, int], after: dict[int, int]) -> str:
    if not before or not after:
        return ""
    return f", backend memory (max) {max(after.values()) / max(before.values()):.2f}x"


def main() -> None:
    args = parse_args()
    with bench_environment() as bench:
        tenant = create_bench_tenant(bench, slug_for(0))
        provision_tenants(bench, 1, args.initial, "provision")
        headers = {"Authorization": f"Bearer {issue_api_key(bench, tenant)}"}
        add_customers(bench.app.test_client(), headers, args.customers)
        first = measure(bench, f"{args.initial} tenants", headers, args)
        provision_tenants(bench, args.initial, args.total, "provision")
        grown = measure(bench, f"{args.total} tenants", headers, args)
        bench.engine.dispose()
        fresh = measure(bench, f"{args.total} tenants, fresh pool", headers, args)
        report(first, [grown, fresh])


if __name__ == "__main__":
    main()
