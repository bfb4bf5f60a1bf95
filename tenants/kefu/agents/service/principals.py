"""From an agent to its effective permissions, cached in Redis.

The cache key carries a per-tenant version that every change to roles, role
grants, agents or units bumps after commit, so a change takes effect on the
very next request without any per-key invalidation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from redis import Redis
from sqlalchemy.orm import Session

from kefu.access.authz import Principal, Scope
from kefu.agents.models import Agent, Role

CACHE_TTL_SECONDS = 600


def _version_key(tenant_slug: str) -> str:
    return f"kefu:{tenant_slug}:access-version"


def _cache_key(tenant_slug: str, agent_id: int, version: int) -> str:
    return f"kefu:{tenant_slug}:principal:{agent_id}:v{version}"


def bump_version(redis: Redis, tenant_slug: str) -> None:
    redis.incr(_version_key(tenant_slug))


def expand(permissions: Iterable[str], catalogue: Iterable[str]) -> list[str]:
    wanted = list(permissions)
    return sorted(catalogue) if "*" in wanted else wanted


def effective_permissions(roles: Iterable[Role]) -> dict[str, Scope]:
    """Union over roles; each permission at the widest scope any role gives it."""
    merged: dict[str, Scope] = {}
    for role in roles:
        scope = Scope[role.scope]
        for permission in role.permissions:
            if merged.get(permission, 0) < scope:
                merged[permission] = scope
    return merged


def principal_for_agent(agent: Agent, tenant_slug: str) -> Principal:
    unit = agent.unit
    return Principal(
        kind="agent",
        tenant_slug=tenant_slug,
        actor=f"agent:{agent.id} ({agent.email})",
        permissions=effective_permissions(agent.roles) if agent.status == "active" else {},
        agent_id=agent.id,
        account_id=agent.account_id,
        unit_id=agent.unit_id,
        unit_path=unit.path if unit else None,
        max_rank=max((role.rank for role in agent.roles), default=0),
        vendor=unit.vendor if unit is not None and unit.sourcing == "outsourced" else None,
    )


def _dump(principal: Principal) -> str:
    return json.dumps(
        {
            "actor": principal.actor,
            "permissions": {k: int(v) for k, v in principal.permissions.items()},
            "agent_id": principal.agent_id,
            "account_id": principal.account_id,
            "unit_id": principal.unit_id,
            "unit_path": principal.unit_path,
            "max_rank": principal.max_rank,
            "vendor": principal.vendor,
        }
    )


def _load(raw: bytes, tenant_slug: str) -> Principal:
    data = json.loads(raw)
    permissions = {k: Scope(v) for k, v in data.pop("permissions").items()}
    return Principal(kind="agent", tenant_slug=tenant_slug, permissions=permissions, **data)


def resolve_agent_principal(
    db: Session, redis: Redis, tenant_slug: str, agent_id: int
) -> Principal | None:
    """The agent's principal, or None when the agent does not exist or is deactivated."""
    version = int(redis.get(_version_key(tenant_slug)) or 0)
    key = _cache_key(tenant_slug, agent_id, version)
    cached = redis.get(key)
    if cached is not None:
        return _load(cached, tenant_slug)
    agent = db.get(Agent, agent_id)
    if agent is None or agent.status != "active":
        return None
    principal = principal_for_agent(agent, tenant_slug)
    redis.set(key, _dump(principal), ex=CACHE_TTL_SECONDS)
    return principal
