"""Authorisation: principals, permissions with data scopes, and the check.

Every capability module declares its permissions in its descriptor; roles
bundle them with a data scope. A request's principal carries the effective
permissions (the union over the caller's roles, each at its widest scope).

Endpoints declare the permission they need with `@requires("module.action")`
(checked before any input is parsed, so a caller without it gets 403, never a
hint from validation); services take the principal for the data-scope part of
the rule (which rows a list returns, which agents a lead may manage).
"""

from __future__ import annotations

import copy
import enum
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import g

from kefu.api.errors import Forbidden, Unauthorized

PERMISSION_ATTRIBUTE = "_kefu_permission"
PUBLIC = "public"  # declared by tenant endpoints that need no permission


class Scope(enum.IntEnum):
    """How far a permission reaches; larger includes smaller."""

    own = 1
    unit = 2
    subtree = 3
    tenant = 4


class PermissionDenied(Forbidden):
    code = "permission_denied"


@dataclass(frozen=True)
class Principal:
    """Who is acting in a tenant request or job, and what they may do."""

    kind: str  # "agent", "api_key", "support", "system"
    tenant_slug: str
    actor: str
    permissions: Mapping[str, Scope] = field(default_factory=dict)
    agent_id: int | None = None
    account_id: int | None = None
    unit_id: int | None = None
    unit_path: str | None = None
    max_rank: int = 0
    vendor: str | None = None

    def scope_of(self, permission: str) -> Scope | None:
        return self.permissions.get(permission)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> Scope:
        scope = self.permissions.get(permission)
        if scope is None:
            raise PermissionDenied(
                f"This action needs the permission {permission}.",
                errors={"permission": [permission]},
            )
        return scope


def full_access(kind: str, tenant_slug: str, actor: str, catalogue: Iterable[str]) -> Principal:
    return Principal(
        kind=kind,
        tenant_slug=tenant_slug,
        actor=actor,
        permissions=dict.fromkeys(catalogue, Scope.tenant),
        max_rank=10**6,
    )


def current_principal() -> Principal:
    principal: Principal | None = g.get("principal")
    if principal is None:
        raise Unauthorized("Authentication required.", code="unauthorized")
    return principal


def requires(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare and enforce the permission an endpoint needs (outermost decorator)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if permission != PUBLIC:
                current_principal().require(permission)
            return view(*args, **kwargs)

        setattr(wrapper, PERMISSION_ATTRIBUTE, permission)
        apidoc = copy.deepcopy(getattr(wrapper, "_apidoc", {}))
        apidoc.setdefault("manual_doc", {})["x-permission"] = permission
        wrapper._apidoc = apidoc  # type: ignore[attr-defined]
        return wrapper

    return decorator


def declared_permission(view: Callable[..., Any]) -> str | None:
    return getattr(view, PERMISSION_ATTRIBUTE, None)
