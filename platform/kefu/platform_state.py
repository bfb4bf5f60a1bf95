"""The per-app bundle of subsystems the factory builds, reachable from a request
or a job as `platform()`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from redis import Redis
from sqlalchemy import Engine

from kefu.modules import ModuleDescriptor
from kefu.settings import Settings

EXTENSION_KEY = "kefu"


@dataclass
class PlatformState:
    settings: Settings
    engine: Engine
    redis: Redis
    modules: dict[str, ModuleDescriptor]
    blueprint_modules: dict[str, str] = field(default_factory=dict)
    # Every permission the modules declare (computed once; read on every request).
    catalogue: list[str] = field(default_factory=list)
    # Provided by the agents module: (tenant session, redis, slug, agent id) -> Principal.
    resolve_agent: Callable[..., Any] | None = None

    def module_of_blueprint(self, blueprint: str | None) -> str | None:
        return self.blueprint_modules.get(blueprint or "")


def platform(app: Flask | None = None) -> PlatformState:
    return (app or current_app).extensions[EXTENSION_KEY]
