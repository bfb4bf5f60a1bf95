"""Every setting Kefu reads from the environment, in one place.

`Settings.from_env()` is the only function that looks at `os.environ`; everything
else receives a `Settings` object. Values are typed and validated here so a
misconfigured deployment fails at start-up with a message naming the variable.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVELOPMENT_SECRET = "kefu-development-secret-not-for-production"
ENVIRONMENTS = ("development", "test", "production")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be a boolean (true/false), got {raw!r}")


@dataclass(frozen=True)
class Settings:
    environment: str = "development"
    database_url: str = ""
    redis_url: str = ""
    secret_key: str = DEVELOPMENT_SECRET
    data_dir: Path = field(default_factory=lambda: REPO_ROOT / "var")
    migrations_dir: Path = field(default_factory=lambda: REPO_ROOT / "migrations")
    max_content_length: int = 1024 * 1024
    db_pool_size: int = 10
    db_pool_max_overflow: int = 10
    db_pool_recycle_seconds: int = 600
    db_pool_max_uses: int = 1000
    migration_concurrency: int = 4
    job_max_retries: int = 3
    job_queue_prefix: str = "kefu"
    platform_token_ttl_seconds: int = 12 * 3600
    log_level: str = "INFO"
    base_url: str = "http://127.0.0.1:5000"
    login_max_failures: int = 5
    login_lock_seconds: int = 900
    login_max_per_address: int = 50

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        environment = env.get("KEFU_ENV", "development").strip().lower()
        if environment not in ENVIRONMENTS:
            raise SettingsError(
                f"KEFU_ENV must be one of {', '.join(ENVIRONMENTS)}, got {environment!r}"
            )
        defaults = cls()
        settings = cls(
            environment=environment,
            database_url=env.get("KEFU_DATABASE_URL", "").strip(),
            redis_url=env.get("KEFU_REDIS_URL", "").strip(),
            secret_key=env.get("KEFU_SECRET_KEY", "") or DEVELOPMENT_SECRET,
            data_dir=Path(env.get("KEFU_DATA_DIR") or defaults.data_dir).resolve(),
            migrations_dir=Path(env.get("KEFU_MIGRATIONS_DIR") or defaults.migrations_dir),
            max_content_length=_int(
                env, "KEFU_MAX_CONTENT_LENGTH", defaults.max_content_length, 1024
            ),
            db_pool_size=_int(env, "KEFU_DB_POOL_SIZE", defaults.db_pool_size, 1),
            db_pool_max_overflow=_int(
                env, "KEFU_DB_POOL_MAX_OVERFLOW", defaults.db_pool_max_overflow
            ),
            db_pool_recycle_seconds=_int(
                env, "KEFU_DB_POOL_RECYCLE_SECONDS", defaults.db_pool_recycle_seconds, 1
            ),
            db_pool_max_uses=_int(env, "KEFU_DB_POOL_MAX_USES", defaults.db_pool_max_uses, 1),
            migration_concurrency=_int(
                env, "KEFU_MIGRATION_CONCURRENCY", defaults.migration_concurrency, 1
            ),
            job_max_retries=_int(env, "KEFU_JOB_MAX_RETRIES", defaults.job_max_retries),
            job_queue_prefix=env.get("KEFU_JOB_QUEUE_PREFIX", defaults.job_queue_prefix),
            platform_token_ttl_seconds=_int(
                env, "KEFU_PLATFORM_TOKEN_TTL_SECONDS", defaults.platform_token_ttl_seconds, 60
            ),
            log_level=env.get("KEFU_LOG_LEVEL", defaults.log_level).upper(),
            base_url=env.get("KEFU_BASE_URL", defaults.base_url).rstrip("/"),
            login_max_failures=_int(env, "KEFU_LOGIN_MAX_FAILURES", defaults.login_max_failures, 1),
            login_lock_seconds=_int(env, "KEFU_LOGIN_LOCK_SECONDS", defaults.login_lock_seconds, 1),
            login_max_per_address=_int(
                env, "KEFU_LOGIN_MAX_PER_ADDRESS", defaults.login_max_per_address, 1
            ),
        )
        settings.validate()
        return settings

    @property
    def login_limits(self) -> Any:
        from kefu.access.login import LoginLimits

        return LoginLimits(
            max_failures=self.login_max_failures,
            lock_seconds=self.login_lock_seconds,
            max_per_address=self.login_max_per_address,
            key_prefix=self.job_queue_prefix,
        )

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def validate(self) -> None:
        if self.is_production:
            if self.secret_key == DEVELOPMENT_SECRET or len(self.secret_key) < 32:
                raise SettingsError(
                    "KEFU_SECRET_KEY must be set to a random value of at least 32 characters "
                    "in production (for example: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))')"
                )
            if not self.database_url or not self.redis_url:
                raise SettingsError(
                    "KEFU_DATABASE_URL and KEFU_REDIS_URL must be set in production; "
                    "the embedded servers are for development only"
                )
        for name in ("database_url",):
            url = getattr(self, name)
            if url and not url.startswith(("postgresql://", "postgresql+psycopg://")):
                raise SettingsError("KEFU_DATABASE_URL must be a postgresql:// URL")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("KEFU_REDIS_URL must be a redis://, rediss:// or unix:// URL")

    def with_services(self, database_url: str, redis_url: str) -> Settings:
        return replace(self, database_url=database_url, redis_url=redis_url)


def random_secret() -> str:
    return secrets.token_urlsafe(48)
