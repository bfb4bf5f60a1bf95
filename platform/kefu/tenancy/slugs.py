"""Tenant slug rules. The schema name is derived from the slug, so these rules
are what keeps tenant names out of SQL injection territory."""

from __future__ import annotations

import re

SLUG_PATTERN = r"^[a-z][a-z0-9_]{2,39}$"
_SLUG_RE = re.compile(SLUG_PATTERN)
RESERVED_SLUGS = frozenset(
    {
        "public",
        "information_schema",
        "kefu",
        "kefu_platform",
        "platform",
        "shared",
        "admin",
        "api",
        "default",
        "postgres",
        "template",
        "tenant",
        "system",
        "root",
    }
)


def slug_problem(slug: object) -> str | None:
    """The rule `slug` breaks, or None when it is acceptable."""
    if not isinstance(slug, str):
        return "must be a string"
    if not _SLUG_RE.fullmatch(slug):
        return (
            f"must match {SLUG_PATTERN}: 3 to 40 characters, lowercase letters, digits and "
            "underscores, starting with a letter"
        )
    if slug.startswith("pg_"):
        return "must not start with 'pg_' (reserved by PostgreSQL)"
    if slug in RESERVED_SLUGS:
        return f"'{slug}' is reserved"
    return None
