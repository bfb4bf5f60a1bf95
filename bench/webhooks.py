"""Webhook throughput and latency.

Publishes N domain events (default 10,000) in one tenant whose 3 endpoints all
point at a local HTTP receiver, runs `kefu worker --simple --burst` processes,
and measures deliveries per second and the time from each event's commit to
its arrival at the receiver.

Targets (issue: messaging): all delivered; at least 500 deliveries/s; p95 from
commit to delivery under 1 s.

    python -m bench.webhooks [--events 10000] [--batch 100] [--workers 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tqdm import tqdm

from bench.common import (
    Bench,
    bench_environment,
    create_bench_tenant,
    ms,
    percentile,
    target_line,
)
from kefu import events
from kefu.database import shared_session, tenant_session, unit_of_work
from kefu.platform_state import platform
from kefu.tenancy.models import Tenant
from kefu.webhooks import service

ENDPOINTS = 3


class Receiver:
    """Records (event id, path) -> arrival time."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[int, str], float] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event_id = int(body.split(b'"id":', 1)[1].split(b",", 1)[0])
                with receiver.lock:
                    receiver.arrivals.setdefault((event_id, self.path), time.time())
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _set_up(bench: Bench, receiver: Receiver) -> Tenant:
    tenant = create_bench_tenant(bench, "bench_webhooks")
    with unit_of_work(shared_session(bench.engine)) as session:
        row = session.get(Tenant, tenant.id)
        row.settings = {**row.settings, service.ALLOW_PRIVATE_SETTING: True}
    principal = _system(tenant.slug)
    with bench.app.app_context(), unit_of_work(tenant_session(bench.engine, tenant.schema)) as db:
        for index in range(ENDPOINTS):
            service.create_endpoint(
                db,
                principal,
                {"url": f"{receiver.base}/endpoint-{index}", "events": ["*"]},
                {service.ALLOW_PRIVATE_SETTING: True},
            )
    return tenant


def _system(slug: str):
    from kefu.access.authz import full_access
    from kefu.modules import permission_catalogue

    return full_access("system", slug, "bench", permission_catalogue())


def _publish(bench: Bench, tenant: Tenant, count: int, batch: int) -> dict[int, float]:
    """Commit events in batches; the commit time of each event id."""
    committed: dict[int, float] = {}
    with bench.app.app_context():
        for start in tqdm(range(0, count, batch), desc="publishing", unit="batch"):
            with unit_of_work(tenant_session(bench.engine, tenant.schema)) as db:
                rows = [
                    events.publish(db, "bench.event", {"n": n}, aggregate=f"rec:{n % 50}")
                    for n in range(start, min(start + batch, count))
                ]
                db.flush()
                ids = [row.id for row in rows]
            now = time.time()
            committed.update(dict.fromkeys(ids, now))
    return committed


def _start_workers(bench: Bench, workers: int) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "KEFU_DATABASE_URL": bench.settings.database_url,
        "KEFU_REDIS_URL": bench.settings.redis_url,
        "KEFU_JOB_QUEUE_PREFIX": bench.settings.job_queue_prefix,
        "KEFU_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "kefu.cli", "worker", "--simple", "--no-scheduler"]
    return [subprocess.Popen(command, env=env) for _ in range(workers)]


def _wait_for_workers(bench: Bench, count: int, timeout: float = 120) -> None:
    """Measure from a warm start: every worker listening on the queues."""
    from rq import Worker

    redis = platform(bench.app).redis
    prefix = bench.settings.job_queue_prefix
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready = [
            w
            for w in Worker.all(connection=redis)
            if any(name.startswith(prefix) for name in w.queue_names())
        ]
        if len(ready) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"only {len(ready)} of {count} workers started")


def _wait_for(receiver: Receiver, expected: int, timeout: float) -> None:
    deadline = time.time() + timeout
    with tqdm(total=expected, desc="delivered", unit="req") as bar:
        while len(receiver.arrivals) < expected and time.time() < deadline:
            bar.update(len(receiver.arrivals) - bar.n)
            time.sleep(0.2)
        bar.update(len(receiver.arrivals) - bar.n)


def _report(receiver: Receiver, committed: dict[int, float], expected: int, started: float) -> None:
    delivered = len(receiver.arrivals)
    finished = max(receiver.arrivals.values(), default=time.time())
    latencies = [
        arrival - committed[event_id] for (event_id, _), arrival in receiver.arrivals.items()
    ]
    rate = delivered / max(finished - started, 1e-9)
    print(f"delivered {delivered} of {expected}  {'PASS' if delivered == expected else 'MISS'}")
    print(
        f"{'deliveries per second':<28} {rate:>10.0f}/s   target >= 500/s     "
        f"{'PASS' if rate >= 500 else 'MISS'}"
    )
    if latencies:
        print(target_line("commit to delivery p50", percentile(latencies, 50), 1.0, ms))
        print(target_line("commit to delivery p95", percentile(latencies, 95), 1.0, ms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    receiver = Receiver()
    with bench_environment() as bench:
        tenant = _set_up(bench, receiver)
        workers = _start_workers(bench, args.workers)
        try:
            _wait_for_workers(bench, args.workers)
            print(f"events {args.events}, endpoints {ENDPOINTS}, workers {args.workers}")
            started = time.time()
            committed = _publish(bench, tenant, args.events, args.batch)
            _wait_for(receiver, args.events * ENDPOINTS, args.timeout)
            _report(receiver, committed, args.events * ENDPOINTS, started)
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(timeout=30)
            redis = platform(bench.app).redis
            for key in redis.scan_iter(match=f"*{bench.settings.job_queue_prefix}*"):
                redis.delete(key)
    receiver.server.shutdown()


if __name__ == "__main__":
    main()
