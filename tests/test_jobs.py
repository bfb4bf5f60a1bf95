"""Background jobs on a real RQ worker: `kefu worker --burst` runs as a child process.

Every test gets its own queue prefix so jobs left behind by other tests never run
here (and ours never run there). Jobs are only ever executed by the worker
subprocess; the tests enqueue them (through the API or `enqueue_tenant_job`)
and inspect the outcome in PostgreSQL, in Redis and on disk.
"""

from __future__ import annotations

import contextlib
import csv
import io
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import func, insert, select

from kefu.customers.jobs import export_customers_csv, export_directory
from kefu.customers.models import Customer, CustomerExport
from kefu.database import shared_session, unit_of_work
from kefu.jobs import DEFAULT_QUEUE, RETRY_INTERVALS, enqueue_tenant_job, queue, queue_names
from kefu.platform_state import PlatformState
from kefu.settings import Settings
from kefu.tenancy import service as tenancy
from tests.conftest import REPO_ROOT, TenantHandle, settings_with, subprocess_env

EXPORTS = "/api/v1/customers/exports"
BOM = b"\xef\xbb\xbf"
WORKER_TIMEOUT = 60
CHINESE_CUSTOMERS = [
    {
        "name": "张伟",
        "emails": ["Zhang.Wei@Example.com"],
        "phones": ["+86 138 0013 8000"],
        "tags": ["贵宾"],
        "attributes": {"城市": "上海"},
        "external_ids": [{"source": "orders", "id": "A-1001"}],
        "vip_level": 3,
    },
    {"name": "李娜", "emails": ["li.na@example.cn"]},
    {"name": 'O\'Neil, "Bob"', "tags": ["english", "comma,inside"]},
]


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture
def job_settings(state: PlatformState, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The app's settings with a queue prefix of this test's own; its jobs are deleted after."""
    isolated = settings_with(state.settings, job_queue_prefix=f"kefujob{uuid.uuid4().hex[:10]}")
    monkeypatch.setattr(state, "settings", isolated)
    yield isolated
    forget_jobs(state.redis, isolated.job_queue_prefix)


def forget_jobs(redis: Redis, prefix: str) -> None:
    """Delete the jobs, queues and registries of a prefix (the Redis may be a shared one)."""
    for name in queue_names(prefix):
        q = Queue(name, connection=redis)
        registries = (q.failed_job_registry, q.finished_job_registry, q.scheduled_job_registry)
        job_ids = {*q.get_job_ids(), *(i for r in registries for i in r.get_job_ids())}
        for job_id in job_ids:
            with contextlib.suppress(NoSuchJobError):
                Job.fetch(job_id, connection=redis).delete()
    for key in redis.scan_iter(match=f"*{prefix}*"):
        redis.delete(key)


def run_worker(settings: Settings, *flags: str) -> str:
    """Run `kefu worker --burst` as a child process until the queues are empty."""
    command = [sys.executable, "-m", "kefu.cli", "worker", "--burst", *flags]
    result = subprocess.run(
        command,
        env=subprocess_env(settings, KEFU_JOB_QUEUE_PREFIX=settings.job_queue_prefix),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT,
        check=False,
    )
    output = f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}\n{output}"
    return output


def default_queue(state: PlatformState) -> Queue:
    return queue(state.redis, DEFAULT_QUEUE, state.settings.job_queue_prefix)


def create_customers(
    client: FlaskClient, handle: TenantHandle, customers: list[dict[str, Any]]
) -> list[int]:
    ids = []
    for body in customers:
        response = client.post("/api/v1/customers", json=body, headers=handle.headers)
        assert response.status_code == 201, response.json
        ids.append(response.json["id"])
    return ids


def request_export(client: FlaskClient, handle: TenantHandle) -> dict[str, Any]:
    response = client.post(EXPORTS, headers=handle.headers)
    assert response.status_code == 202, response.json
    assert response.json["status"] == "queued"
    assert response.json["download_url"] is None
    return response.json


def get_export(client: FlaskClient, handle: TenantHandle, export_id: int) -> dict[str, Any]:
    response = client.get(f"{EXPORTS}/{export_id}", headers=handle.headers)
    assert response.status_code == 200, response.json
    return response.json


def download_rows(client: FlaskClient, handle: TenantHandle, export_id: int) -> list[dict]:
    response = client.get(f"{EXPORTS}/{export_id}/download", headers=handle.headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    assert response.data.startswith(BOM)
    return list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json["code"] == code, response.json


def export_row(tenant_db, handle: TenantHandle, export_id: int) -> CustomerExport:
    with tenant_db(handle) as db:
        return db.get(CustomerExport, export_id)


def files_of(handle: TenantHandle, app: Flask) -> list[str]:
    with app.app_context():
        directory = export_directory(handle.slug)
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def export_path(app: Flask, handle: TenantHandle, file_name: str) -> Path:
    with app.app_context():
        return export_directory(handle.slug) / file_name


# --- end to end ---------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [(), ("--simple",)], ids=["forking", "simple"])
def test_export_end_to_end(
    flags: tuple[str, ...],
    client: FlaskClient,
    tenant: TenantHandle,
    state: PlatformState,
    job_settings: Settings,
) -> None:
    create_customers(client, tenant, CHINESE_CUSTOMERS)
    export = request_export(client, tenant)
    assert default_queue(state).count == 1, "the job is enqueued once the request committed"
    assert get_export(client, tenant, export["id"])["status"] == "queued"
    not_ready = client.get(f"{EXPORTS}/{export['id']}/download", headers=tenant.headers)
    assert_error(not_ready, 409, "export_not_ready")

    run_worker(job_settings, *flags)

    done = get_export(client, tenant, export["id"])
    assert done["status"] == "done"
    assert done["row_count"] == len(CHINESE_CUSTOMERS)
    assert done["download_url"] == f"{EXPORTS}/{export['id']}/download"
    assert done["finished_at"] is not None
    rows = download_rows(client, tenant, export["id"])
    assert [row["name"] for row in rows] == [c["name"] for c in CHINESE_CUSTOMERS]
    zhang = rows[0]
    assert zhang["emails"] == "zhang.wei@example.com"
    assert zhang["phones"] == "+8613800138000"
    assert zhang["tags"] == "贵宾"
    assert zhang["external_ids"] == "orders:A-1001"
    assert zhang["attributes"] == '{"城市": "上海"}'
    assert rows[2]["tags"] == "english;comma,inside"


def test_download_is_an_attachment_named_after_the_export(
    client: FlaskClient, tenant: TenantHandle, job_settings: Settings
) -> None:
    create_customers(client, tenant, CHINESE_CUSTOMERS[:1])
    export = request_export(client, tenant)
    run_worker(job_settings)
    response = client.get(f"{EXPORTS}/{export['id']}/download", headers=tenant.headers)
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert f"customers-{export['id']}.csv" in disposition
    assert "张伟".encode() in response.data


# --- tenant isolation ---------------------------------------------------------------------


def test_exports_are_isolated_between_tenants(
    client: FlaskClient,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    job_settings: Settings,
) -> None:
    a_names = ["张伟", "王芳"]
    create_customers(client, tenant, [{"name": name} for name in a_names])
    create_customers(client, other_tenant, [{"name": "赵敏 (B)"}])
    first_a = request_export(client, tenant)["id"]
    second_a = request_export(client, tenant)["id"]
    # Before B has any export, no id of A's exists for B.
    for export_id in (first_a, second_a):
        assert_error(
            client.get(f"{EXPORTS}/{export_id}", headers=other_tenant.headers),
            404,
            "export_not_found",
        )
    only_b = request_export(client, other_tenant)["id"]
    assert only_b == first_a, "ids are per schema: B's first export reuses A's first id"

    run_worker(job_settings, "--simple")

    for export_id in (first_a, second_a):
        assert [r["name"] for r in download_rows(client, tenant, export_id)] == a_names
    # B's export with the same number as A's first holds B's customers only.
    assert [r["name"] for r in download_rows(client, other_tenant, only_b)] == ["赵敏 (B)"]
    assert get_export(client, other_tenant, only_b)["row_count"] == 1
    # A's second export does not exist for B, neither as a record nor as a file.
    assert_error(
        client.get(f"{EXPORTS}/{second_a}", headers=other_tenant.headers), 404, "export_not_found"
    )
    download = client.get(f"{EXPORTS}/{second_a}/download", headers=other_tenant.headers)
    assert_error(download, 404, "export_not_found")


def test_job_for_one_tenant_only_touches_that_tenants_schema(
    app: Flask,
    state: PlatformState,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    tenant_db,
    job_settings: Settings,
) -> None:
    exports = {}
    for handle, names in ((tenant, ["甲一", "甲二", "甲三"]), (other_tenant, ["乙一"])):
        with tenant_db(handle) as db:
            db.add_all(Customer(name=name) for name in names)
            export = CustomerExport(status="queued", requested_by="tests", row_count=0)
            db.add(export)
            db.flush()
            exports[handle.slug] = export.id
    assert exports[tenant.slug] == exports[other_tenant.slug], "same id in both schemas"
    export_id = exports[tenant.slug]
    with app.app_context():
        job = enqueue_tenant_job(tenant.slug, export_customers_csv, export_id=export_id)

    run_worker(job_settings)

    assert Job.fetch(job.id, connection=state.redis).get_status() == JobStatus.FINISHED
    mine = export_row(tenant_db, tenant, export_id)
    assert (mine.status, mine.row_count) == ("done", 3)
    theirs = export_row(tenant_db, other_tenant, export_id)
    assert (theirs.status, theirs.row_count, theirs.file_name) == ("queued", 0, None)
    assert theirs.finished_at is None
    assert files_of(other_tenant, app) == []
    assert files_of(tenant, app) == [f"customers-{export_id}.csv"]


# --- retries, failures, idempotency -------------------------------------------------------


@pytest.mark.parametrize(
    ("max_retries", "intervals"),
    [(1, [10]), (3, [10, 60, 300]), (5, [10, 60, 300, 300, 300])],
)
def test_enqueue_sets_retry_with_configured_backoff(
    max_retries: int,
    intervals: list[int],
    app: Flask,
    state: PlatformState,
    tenant: TenantHandle,
    job_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state, "settings", settings_with(job_settings, job_max_retries=max_retries))
    with app.app_context():
        job = enqueue_tenant_job(tenant.slug, export_customers_csv, export_id=1)
    stored = Job.fetch(job.id, connection=state.redis)
    assert stored.retries_left == max_retries
    assert stored.retry_intervals == intervals
    assert intervals[: len(RETRY_INTERVALS)] == RETRY_INTERVALS[:max_retries]
    assert stored.args == (
        tenant.slug,
        "kefu.customers.jobs:export_customers_csv",
        {"export_id": 1},
    )
    assert stored.origin == f"{job_settings.job_queue_prefix}:default"


def test_no_retry_when_retries_are_disabled(
    app: Flask, state: PlatformState, tenant: TenantHandle, job_settings: Settings
) -> None:
    assert job_settings.job_max_retries == 0
    with app.app_context():
        job = enqueue_tenant_job(tenant.slug, export_customers_csv, export_id=1)
    stored = Job.fetch(job.id, connection=state.redis)
    assert stored.retries_left is None
    assert stored.retry_intervals is None


def suspend(state: PlatformState, handle: TenantHandle) -> None:
    with unit_of_work(shared_session(state.engine)) as session:
        tenancy.change_status(session, handle.slug, "suspend", actor="tests")


def resume(state: PlatformState, handle: TenantHandle) -> None:
    with unit_of_work(shared_session(state.engine)) as session:
        tenancy.change_status(session, handle.slug, "resume", actor="tests")


def test_failed_job_is_retried_later_by_the_worker(
    app: Flask,
    state: PlatformState,
    tenant: TenantHandle,
    job_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state, "settings", settings_with(job_settings, job_max_retries=2))
    suspend(state, tenant)
    with app.app_context():
        job = enqueue_tenant_job(tenant.slug, export_customers_csv, export_id=1)
    before = datetime.now(UTC)

    output = run_worker(job_settings)

    # RQ keeps no result for an attempt it will retry; the worker logs the exception.
    assert f"TenantUnavailable: tenant {tenant.slug} is suspended" in output
    stored = Job.fetch(job.id, connection=state.redis)
    assert stored.get_status() == JobStatus.SCHEDULED
    assert stored.retries_left == 1
    scheduled = default_queue(state).scheduled_job_registry
    assert job.id in scheduled.get_job_ids()
    due = scheduled.get_scheduled_time(job.id)
    first_interval = timedelta(seconds=RETRY_INTERVALS[0])
    assert (
        before + first_interval - timedelta(seconds=2) <= due <= datetime.now(UTC) + first_interval
    )
    assert job.id not in default_queue(state).failed_job_registry.get_job_ids()


def test_job_for_suspended_tenant_fails_without_touching_data(
    app: Flask,
    client: FlaskClient,
    state: PlatformState,
    tenant: TenantHandle,
    tenant_db,
    job_settings: Settings,
) -> None:
    create_customers(client, tenant, CHINESE_CUSTOMERS)
    export_id = request_export(client, tenant)["id"]
    [job_id] = default_queue(state).get_job_ids()
    suspend(state, tenant)

    run_worker(job_settings)

    job = Job.fetch(job_id, connection=state.redis)
    assert job.get_status() == JobStatus.FAILED
    assert "TenantUnavailable" in job.latest_result().exc_string
    assert f"tenant {tenant.slug} is suspended" in job.latest_result().exc_string
    failed = default_queue(state).failed_job_registry
    assert job_id in failed.get_job_ids()
    untouched = export_row(tenant_db, tenant, export_id)
    assert (untouched.status, untouched.row_count, untouched.file_name) == ("queued", 0, None)
    assert files_of(tenant, app) == []

    # Once the tenant is back, the recorded failure can be requeued and succeeds.
    resume(state, tenant)
    failed.requeue(job_id)
    run_worker(job_settings)
    assert Job.fetch(job_id, connection=state.redis).get_status() == JobStatus.FINISHED
    assert get_export(client, tenant, export_id)["row_count"] == len(CHINESE_CUSTOMERS)


def test_export_job_enqueued_twice_writes_one_consistent_file(
    app: Flask,
    client: FlaskClient,
    state: PlatformState,
    tenant: TenantHandle,
    job_settings: Settings,
) -> None:
    create_customers(client, tenant, CHINESE_CUSTOMERS)
    export_id = request_export(client, tenant)["id"]
    with app.app_context():
        again = enqueue_tenant_job(tenant.slug, export_customers_csv, export_id=export_id)
    assert default_queue(state).count == 2

    run_worker(job_settings)

    job_ids = default_queue(state).finished_job_registry.get_job_ids()
    assert again.id in job_ids and len(job_ids) == 2
    for job_id in job_ids:
        assert Job.fetch(job_id, connection=state.redis).return_value() == 3
    done = get_export(client, tenant, export_id)
    assert (done["status"], done["row_count"]) == ("done", len(CHINESE_CUSTOMERS))
    assert files_of(tenant, app) == [f"customers-{export_id}.csv"]
    assert len(download_rows(client, tenant, export_id)) == len(CHINESE_CUSTOMERS)


def test_finished_export_is_left_alone_when_its_job_runs_again(
    app: Flask,
    client: FlaskClient,
    state: PlatformState,
    tenant: TenantHandle,
    tenant_db,
    job_settings: Settings,
) -> None:
    create_customers(client, tenant, CHINESE_CUSTOMERS)
    export_id = request_export(client, tenant)["id"]
    run_worker(job_settings, "--simple")
    first = get_export(client, tenant, export_id)
    path = export_path(app, tenant, f"customers-{export_id}.csv")
    content = path.read_bytes()

    create_customers(client, tenant, [{"name": "后来的客户"}])
    with app.app_context():
        again = enqueue_tenant_job(tenant.slug, export_customers_csv, export_id=export_id)
    run_worker(job_settings)

    assert Job.fetch(again.id, connection=state.redis).return_value() == len(CHINESE_CUSTOMERS)
    assert get_export(client, tenant, export_id) == first
    assert path.read_bytes() == content
    assert files_of(tenant, app) == [path.name]
    with tenant_db(tenant) as db:
        assert db.scalar(select(func.count()).select_from(Customer)) == 4


def test_job_for_unknown_tenant_fails_as_tenant_unavailable(
    app: Flask, state: PlatformState, job_settings: Settings
) -> None:
    slug = f"gone_{uuid.uuid4().hex[:8]}"
    with app.app_context():
        job = enqueue_tenant_job(slug, export_customers_csv, export_id=1)

    run_worker(job_settings, "--simple")

    stored = Job.fetch(job.id, connection=state.redis)
    assert stored.get_status() == JobStatus.FAILED
    assert f"TenantUnavailable: tenant {slug} does not exist" in stored.latest_result().exc_string
    assert job.id in default_queue(state).failed_job_registry.get_job_ids()


def start_worker(settings: Settings, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kefu.cli", "worker", "--burst", *flags],
        env=subprocess_env(settings, KEFU_JOB_QUEUE_PREFIX=settings.job_queue_prefix),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_started(
    state: PlatformState, job_ids: list[str], workers: list[subprocess.Popen[str]]
) -> None:
    """Wait until every job is being performed (each by a different worker)."""
    deadline = time.monotonic() + WORKER_TIMEOUT
    while time.monotonic() < deadline:
        statuses = [Job.fetch(i, connection=state.redis).get_status() for i in job_ids]
        if all(status == JobStatus.STARTED for status in statuses):
            return
        exited = [w.args for w in workers if w.poll() is not None]
        assert not exited, f"a worker exited before the jobs started: {exited}"
        time.sleep(0.1)
    pytest.fail(f"jobs did not start in {WORKER_TIMEOUT} s: {statuses}")


def test_concurrent_runs_of_one_export_write_one_consistent_file(
    app: Flask,
    client: FlaskClient,
    state: PlatformState,
    tenant: TenantHandle,
    tenant_db,
    job_settings: Settings,
) -> None:
    total = 3000
    names = [f"客户{i:05d}" for i in range(total)]
    with tenant_db(tenant) as db:
        db.execute(insert(Customer), [{"name": name} for name in names])
    export_id = request_export(client, tenant)["id"]
    with app.app_context():
        enqueue_tenant_job(tenant.slug, export_customers_csv, export_id=export_id)
    job_ids = default_queue(state).get_job_ids()
    assert len(job_ids) == 2

    # Hold the export row so both workers have dequeued one job each before either runs.
    with tenant_db(tenant) as db:
        db.get(CustomerExport, export_id, with_for_update=True)
        workers = [start_worker(job_settings), start_worker(job_settings, "--simple")]
        wait_until_started(state, job_ids, workers)
    outputs = [worker.communicate(timeout=WORKER_TIMEOUT)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output

    for job_id in job_ids:
        job = Job.fetch(job_id, connection=state.redis)
        assert job.get_status() == JobStatus.FINISHED, "\n".join(outputs)
        assert job.return_value() == total
    assert get_export(client, tenant, export_id)["row_count"] == total
    assert [row["name"] for row in download_rows(client, tenant, export_id)] == names
    assert files_of(tenant, app) == [f"customers-{export_id}.csv"]


def export_csv_as(client: FlaskClient, headers: dict[str, str], settings: Settings) -> str:
    """Request an export with these credentials, let a real worker run it, download it."""
    export = client.post(EXPORTS, headers=headers)
    assert export.status_code == 202, export.json
    run_worker(settings)
    response = client.get(f"{EXPORTS}/{export.json['id']}/download", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.data.decode("utf-8-sig")


def test_export_by_an_outsourced_lead_is_masked_and_formula_safe(
    client: FlaskClient, tenant: TenantHandle, make_agent, make_unit, job_settings: Settings
) -> None:
    admin = make_agent(tenant, "tenant_admin")
    created = client.post(
        "/api/v1/customers",
        json={
            "name": '=HYPERLINK("http://evil")',
            "emails": ["zw@a.cn"],
            "phones": ["+8613800138000"],
            "attributes": {"收货地址": "上海市浦东新区"},
        },
        headers=admin.headers,
    )
    assert created.status_code == 201
    vendor_unit = make_unit(tenant, "外包", sourcing="outsourced", vendor="远航")
    vendor = make_agent(tenant, "outsourced_lead", unit_id=vendor_unit)
    masked = export_csv_as(client, vendor.headers, job_settings)
    assert "zw@a.cn" not in masked and "+8613800138000" not in masked
    assert "浦东新区" not in masked
    assert "z***@a.cn" in masked and "+86*******8000" in masked
    assert "'=HYPERLINK" in masked
    unmasked = export_csv_as(client, admin.headers, job_settings)
    assert "zw@a.cn" in unmasked and "+8613800138000" in unmasked
