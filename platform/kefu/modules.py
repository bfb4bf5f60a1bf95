"""Capability modules: the descriptor each tenant-plane module exposes, and
their discovery by the composition root.

A module is a package `kefu.<name>` (under tenants/) with a `module.py` that
defines `MODULE = ModuleDescriptor(...)`. The app factory and the CLI call
`discover_modules()`; nothing else in the shared plane imports tenant code.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from flask_smorest import Blueprint
from sqlalchemy.orm import Session

SHARED_MODEL_MODULES = (
    "kefu.tenancy.models",
    "kefu.access.models",
    "kefu.audit",
    "kefu.api.idempotency",
    "kefu.events",
)


@dataclass(frozen=True)
class ModuleDescriptor:
    name: str
    title: str
    blueprint: Blueprint | None = None
    permissions: Mapping[str, str] = field(default_factory=dict)
    jobs: tuple[Callable[..., Any], ...] = ()
    default_settings: Mapping[str, Any] = field(default_factory=dict)
    enabled_by_default: bool = True
    # Called inside the provisioning transaction with the new tenant's session
    # and the permission catalogue (e.g. to seed default roles).
    provision: Callable[[Session, Collection[str]], None] | None = None
    # (tenant session, redis, tenant slug, agent id) -> Principal | None. One module
    # (agents) provides it; the request lifecycle uses it for agent tokens.
    resolve_agent: Callable[..., Any] | None = None
    # Domain events the module publishes: name -> what it means (the webhook catalogue).
    events: Mapping[str, str] = field(default_factory=dict)
    # Platform-side routes of the module, mounted at /api/platform/v1/modules/<name>.
    platform_blueprint: Blueprint | None = None


@cache
def discover_modules() -> dict[str, ModuleDescriptor]:
    import kefu

    found: dict[str, ModuleDescriptor] = {}
    for info in sorted(pkgutil.iter_modules(kefu.__path__), key=lambda i: i.name):
        if not info.ispkg or importlib.util.find_spec(f"kefu.{info.name}.module") is None:
            continue
        descriptor = importlib.import_module(f"kefu.{info.name}.module").MODULE
        if not isinstance(descriptor, ModuleDescriptor):
            raise TypeError(f"kefu.{info.name}.module.MODULE is not a ModuleDescriptor")
        if descriptor.name in found:
            raise ValueError(f"two modules are named {descriptor.name!r}")
        found[descriptor.name] = descriptor
    return found


def load_all_models() -> None:
    """Import every model so both metadata objects are complete (for Alembic)."""
    for name in SHARED_MODEL_MODULES:
        importlib.import_module(name)
    discover_modules()


def default_modules() -> list[str]:
    return [name for name, module in discover_modules().items() if module.enabled_by_default]


def permission_catalogue(modules: Mapping[str, ModuleDescriptor] | None = None) -> list[str]:
    """Every permission any module declares."""
    chosen = discover_modules() if modules is None else modules
    return sorted({name for module in chosen.values() for name in module.permissions})
