"""What every access-relevant change does once its transaction commits:
bump the tenant's permission-cache version and write the audit record.

Both hang on the tenant session's own `after_commit` event, so they happen
exactly when the change is visible (never for a rolled-back change, never
before the commit, whether in a request, a job or a CLI command).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from kefu import audit
from kefu.access.authz import Principal
from kefu.agents.service.principals import bump_version
from kefu.database import after_commit
from kefu.platform_state import platform


def access_changed(
    db: Session,
    principal: Principal,
    action: str,
    target: str,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    state = platform()
    details = {k: v for k, v in (("before", before), ("after", after)) if v is not None}
    record = {
        "actor": principal.actor,
        "action": action,
        "tenant_slug": principal.tenant_slug,
        "target": target,
        "details": details,
        "address": audit.request_address(),
    }

    after_commit(db, lambda: bump_version(state.redis, principal.tenant_slug))
    after_commit(db, lambda: audit.record_now(state.engine, **record))
