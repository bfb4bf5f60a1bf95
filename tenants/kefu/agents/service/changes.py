"""What every access-relevant change does once its transaction commits:
bump the tenant's permission-cache version and write the audit record."""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context

from kefu import audit
from kefu.access.authz import Principal
from kefu.agents.service.principals import bump_version
from kefu.platform_state import platform


def access_changed(
    principal: Principal,
    action: str,
    target: str,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    state = platform()
    details = {k: v for k, v in (("before", before), ("after", after)) if v is not None}
    audit.record_after_commit(
        state.engine,
        actor=principal.actor,
        action=action,
        tenant_slug=principal.tenant_slug,
        target=target,
        details=details,
    )
    slug = principal.tenant_slug
    if has_request_context() and "db" in g:
        g.setdefault("after_commit", []).append(lambda: bump_version(state.redis, slug))
    else:
        bump_version(state.redis, slug)
