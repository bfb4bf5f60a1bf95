"""Authorisation check latency: from a token to effective permissions with scope.

Sets up one tenant with 50 roles (the 9 defaults and 41 random ones) and a
5-level organisation tree (1 + 4 + 16 + 64 + 256 units) holding 2,000 agents
with three roles each, plus one signed-in agent in the deepest level holding
eight roles. Then times, wall clock:

* (a) kefu.agents.service.principals.resolve_agent_principal with a warm cache;
* (b) the same, cold: the tenant's access version is bumped before each call
  (outside the timer); each call opens, uses and closes a tenant session, as
  kefu.request_context does;
* (c) the whole before_request path: GET /api/v1/agents/me through
  app.test_client() with the agent's tenant-scoped access token.

and prints median and p95. Target: (a) median under 1 ms. Finally grants the
agent a role through the agents service and checks that the very next
resolution reflects it (the version bump invalidates the cache).

The fresh database is created on KEFU_BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1/postgres) and dropped at the end; Redis is
KEFU_BENCH_REDIS_URL (default redis://127.0.0.1:6379/0).

    python -m bench.authz [--warm-runs 2000] [--cold-runs 300] [--request-runs 500]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from kefu.access import accounts, tokens
from kefu.access.authz import Principal, Scope, full_access
from kefu.agents.models import SCOPES, Agent, AgentRole, OrgUnit, Role
from kefu.agents.service import agents, roles
from kefu.agents.service.principals import bump_version, resolve_agent_principal
from kefu.app import create_app
from kefu.database import shared_session, tenant_session, unit_of_work, utcnow
from kefu.modules import default_modules, permission_catalogue
from kefu.platform_state import PlatformState, platform
from kefu.schema.alembic import upgrade_shared
from kefu.settings import Settings
from kefu.tenancy import service as tenancy
from kefu.tenancy.models import Tenant

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ROLE_COUNT = 50
AGENT_COUNT = 2_000
ROLES_PER_AGENT = 3
MEASURED_AGENT_ROLES = 8
BRANCHING = 4
LEVELS = ("department", "department", "team", "team", "group")
MEDIAN_TARGET = 0.001
FAKE_ACCOUNT_BASE = 10**12  # agents nobody signs in as; no shared account needed
ACTOR = "bench"


@dataclass(frozen=True)
class Setup:
    app: Flask
    state: PlatformState
    tenant: Tenant
    agent_id: int
    access_token: str


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-runs", type=int, default=2000, help="warm resolutions to time")
    parser.add_argument("--cold-runs", type=int, default=300, help="cold resolutions to time")
    parser.add_argument("--request-runs", type=int, default=500, help="GET requests to time")
    return parser.parse_args()


# --- environment ------------------------------------------------------------------


def _admin_url(server_url: str) -> str:
    url = make_url(server_url).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


def _execute_on_server(server_url: str, statement: str) -> None:
    with psycopg.connect(_admin_url(server_url), autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def bench_app() -> Iterator[Flask]:
    """An app on a fresh database with the shared schema migrated; dropped afterwards."""
    server = os.environ.get("KEFU_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL).strip()
    name = f"kefu_bench_{uuid.uuid4().hex[:10]}"
    work_dir = Path(tempfile.mkdtemp(prefix="kefu-bench-", dir="/tmp"))
    _execute_on_server(server, f'CREATE DATABASE "{name}"')
    settings = Settings(
        environment="test",
        database_url=make_url(server)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False),
        redis_url=os.environ.get("KEFU_BENCH_REDIS_URL", DEFAULT_REDIS_URL).strip(),
        data_dir=work_dir / "data",
        job_queue_prefix=f"kefubench{uuid.uuid4().hex[:8]}",
        log_level="WARNING",
    )
    app = None
    try:
        app = create_app(settings)
        app.config["TESTING"] = True
        upgrade_shared(platform(app).engine, settings.migrations_dir)
        print(f"database: {name} on {make_url(server).render_as_string()}")
        yield app
    finally:
        if app is not None:
            platform(app).engine.dispose()
        _execute_on_server(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(work_dir, ignore_errors=True)


def forget_cache(state: PlatformState, slug: str) -> None:
    for key in state.redis.scan_iter(match=f"kefu:{slug}:*"):
        state.redis.delete(key)


# --- data -------------------------------------------------------------------------


def create_tenant(state: PlatformState) -> Tenant:
    slug = f"bench_authz_{uuid.uuid4().hex[:8]}"
    spec = tenancy.TenantSpec(
        slug=slug, display_name="Bench authz", modules=default_modules(), settings={}
    )
    return tenancy.create_tenant(
        state.engine,
        spec,
        known_modules=list(state.modules),
        migrations_dir=state.settings.migrations_dir,
        actor=ACTOR,
    )


def add_roles(db: Session, catalogue: Sequence[str], rng: random.Random) -> list[Role]:
    existing = len(roles.list_roles(db))
    for index in range(ROLE_COUNT - existing):
        db.add(
            Role(
                key=f"bench_role_{index:02d}",
                name=f"Bench role {index}",
                rank=rng.randint(1, 95),
                scope=rng.choice(SCOPES),
                permissions=sorted(rng.sample(list(catalogue), rng.randint(2, 6))),
            )
        )
    db.flush()
    return [role for role in roles.list_roles(db) if role.key != "tenant_admin"]


def add_tree(db: Session) -> list[list[OrgUnit]]:
    """One root, then BRANCHING children per unit for each further level; level by level."""
    levels = [add_level(db, [None], LEVELS[0], 1)]
    for kind in LEVELS[1:]:
        levels.append(add_level(db, levels[-1], kind, BRANCHING))
    return levels


def add_level(
    db: Session, parents: Sequence[OrgUnit | None], kind: str, children_each: int
) -> list[OrgUnit]:
    pairs = [
        (parent, OrgUnit(name=f"{kind} {i}", kind=kind, parent_id=parent.id if parent else None))
        for i, parent in enumerate(p for p in parents for _ in range(children_each))
    ]
    db.add_all(unit for _, unit in pairs)
    db.flush()
    for parent, unit in pairs:
        unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    db.flush()
    return [unit for _, unit in pairs]


def add_agents(
    db: Session, units: Sequence[OrgUnit], role_pool: Sequence[Role], rng: random.Random
) -> None:
    people = [
        Agent(
            account_id=FAKE_ACCOUNT_BASE + i,
            email=f"bench-{i}@example.com",
            display_name=f"Bench agent {i}",
            unit_id=units[i % len(units)].id,
        )
        for i in range(AGENT_COUNT - 1)
    ]
    db.add_all(people)
    db.flush()
    for person in people:
        grant_directly(db, person.id, rng.sample(list(role_pool), ROLES_PER_AGENT))


def grant_directly(db: Session, agent_id: int, held: Sequence[Role]) -> None:
    now = utcnow()
    db.add_all(
        AgentRole(agent_id=agent_id, role_id=r.id, granted_by=ACTOR, granted_at=now) for r in held
    )
    db.flush()


def add_signed_in_agent(
    state: PlatformState, db: Session, tenant: Tenant, unit: OrgUnit, held: Sequence[Role]
) -> tuple[int, str]:
    """The measured agent: a real account, membership and tenant-scoped access token."""
    account = accounts.find_or_create_account(
        state.engine, email="measured@example.com", display_name="Measured agent"
    )
    agent = Agent(
        account_id=account.id, email=account.email, display_name="Measured", unit_id=unit.id
    )
    db.add(agent)
    db.flush()
    grant_directly(db, agent.id, held)
    accounts.upsert_membership(state.engine, account.id, tenant.slug, agent.id)
    with unit_of_work(shared_session(state.engine)) as session:
        pair = tokens.issue_pair(session, account, tenant, None)
    return agent.id, pair.access_token


def build(app: Flask) -> Setup:
    state = platform(app)
    rng = random.Random(20240601)
    tenant = create_tenant(state)
    with unit_of_work(tenant_session(state.engine, tenant.schema)) as db:
        role_pool = add_roles(db, permission_catalogue(state.modules), rng)
        levels = add_tree(db)
        add_agents(db, [unit for level in levels for unit in level], role_pool, rng)
        held = rng.sample(role_pool, MEASURED_AGENT_ROLES)
        agent_id, token = add_signed_in_agent(state, db, tenant, levels[-1][-1], held)
    units = sum(len(level) for level in levels)
    print(
        f"tenant:   {tenant.slug}: {ROLE_COUNT} roles, {units} units in {len(LEVELS)} levels, "
        f"{AGENT_COUNT} agents; measured agent {agent_id} holds {MEASURED_AGENT_ROLES} roles"
    )
    return Setup(app=app, state=state, tenant=tenant, agent_id=agent_id, access_token=token)


# --- measurements -----------------------------------------------------------------


def sample(action: Callable[[], object], runs: int, prepare: Callable[[], object]) -> list[float]:
    """Seconds per call of `action`; `prepare` runs before each call, untimed."""
    seconds = []
    for _ in range(runs):
        prepare()
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return seconds


def resolve(setup: Setup, db: Session) -> Principal | None:
    return resolve_agent_principal(db, setup.state.redis, setup.tenant.slug, setup.agent_id)


def resolve_in_fresh_session(setup: Setup) -> Principal | None:
    """As request_context does: a tenant session opened, used and closed per resolution."""
    with tenant_session(setup.state.engine, setup.tenant.schema) as db:
        return resolve(setup, db)


def warm_resolutions(setup: Setup, runs: int) -> list[float]:
    with tenant_session(setup.state.engine, setup.tenant.schema) as db:
        resolve(setup, db)
        return sample(lambda: resolve(setup, db), runs, lambda: None)


def cold_resolutions(setup: Setup, runs: int) -> list[float]:
    def bump() -> None:
        bump_version(setup.state.redis, setup.tenant.slug)

    return sample(lambda: resolve_in_fresh_session(setup), runs, bump)


def request_timings(setup: Setup, runs: int) -> list[float]:
    client = setup.app.test_client()
    headers = {"Authorization": f"Bearer {setup.access_token}"}

    def get() -> None:
        response = client.get("/api/v1/agents/me", headers=headers)
        assert response.status_code == 200, response.json

    for _ in range(20):  # warm-up: pool, caches
        get()
    return sample(get, runs, lambda: None)


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def p95(seconds: Sequence[float]) -> float:
    return statistics.quantiles(seconds, n=100, method="inclusive")[94]


def report(label: str, seconds: Sequence[float], target: float | None = None) -> None:
    median = statistics.median(seconds)
    line = f"{label:<36} n={len(seconds):<5} median {fmt(median):>10}  p95 {fmt(p95(seconds)):>10}"
    if target is not None:
        line += f"   target median < {fmt(target)}  {'PASS' if median < target else 'MISS'}"
    print(line)


# --- the change check -------------------------------------------------------------


def grant_tenant_admin(setup: Setup) -> None:
    """Through the agents service, as the platform would: it bumps the version."""
    principal = full_access("system", setup.tenant.slug, ACTOR, permission_catalogue())
    with (
        setup.app.app_context(),
        unit_of_work(tenant_session(setup.state.engine, setup.tenant.schema)) as db,
    ):
        admin_role = roles.role_by_key(db, "tenant_admin")
        agents.grant_role(db, principal, setup.agent_id, admin_role.id)


def change_is_visible(setup: Setup) -> bool:
    everything = dict.fromkeys(permission_catalogue(setup.state.modules), Scope.tenant)
    before = resolve_in_fresh_session(setup)
    grant_tenant_admin(setup)
    after = resolve_in_fresh_session(setup)
    if before is None or after is None or before.max_rank >= 100:
        return False
    return dict(after.permissions) == everything and after.max_rank == 100


def main() -> None:
    args = parse_args()
    with bench_app() as app:
        setup = build(app)
        try:
            report(
                "(a) resolve, warm cache", warm_resolutions(setup, args.warm_runs), MEDIAN_TARGET
            )
            report("(b) resolve, cold (version bumped)", cold_resolutions(setup, args.cold_runs))
            report("(c) GET /api/v1/agents/me", request_timings(setup, args.request_runs))
            visible = change_is_visible(setup)
            print(
                f"after a role grant the next resolution reflects it: {'OK' if visible else 'NO'}"
            )
        finally:
            forget_cache(setup.state, setup.tenant.slug)
    if not visible:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
