"""Shared helpers for CLI commands: one app per invocation, errors as messages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
from flask import Flask

from kefu.api.errors import ApiError
from kefu.platform_state import PlatformState, platform
from kefu.settings import SettingsError

_app: Flask | None = None


def cli_app() -> Flask:
    global _app
    if _app is None:
        from kefu.app import create_app

        try:
            _app = create_app()
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from exc
    return _app


def state() -> PlatformState:
    return platform(cli_app())


def reports_api_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Show a service's ApiError as a one-line message with exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ApiError as exc:
            problems = [
                f"{name}: {problem}"
                for name, field_problems in (exc.errors or {}).items()
                for problem in field_problems
                if str(problem) not in exc.message
            ]
            suffix = f" ({'; '.join(problems)})" if problems else ""
            raise click.ClickException(f"{exc.message}{suffix}") from exc

    return wrapper
