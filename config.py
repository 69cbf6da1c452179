"""Settings: read once from the environment and an optional `.env` file (the environment wins)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import quote

import msgspec
from dotenv import dotenv_values

PROJECT_DIR: Final = Path(__file__).resolve().parent
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class ConfigError(ValueError):
    """A setting has a value the service cannot use; the message names the setting."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # None means "no database configured": an embedded PostgreSQL is started in `embedded_pg_dir`.
    database_url: str | None = None
    db_schema: str = "public"
    host: str = "127.0.0.1"
    port: int = 8000
    embedded_pg_dir: Path = PROJECT_DIR / ".pgdata"
    pool_min_size: int = 2
    pool_max_size: int = 20
    # Seconds a request may wait for a pooled connection before it is answered 503.
    pool_timeout: float = 5.0
    # Milliseconds one SQL statement may run before PostgreSQL cancels it (503 to the client).
    statement_timeout_ms: int = 15_000
    # Seconds /health waits for the database before it answers 503.
    health_timeout: float = 2.0
    # Create missing tables and indexes at startup (never drops or alters what exists).
    migrate_on_start: bool = True
    request_max_body_size: int = 10 * 1024 * 1024
    # Largest accepted JSON body of one step state or checkpoint, in bytes.
    max_state_bytes: int = 1024 * 1024
    idempotency_ttl_hours: float = 24.0
    stuck_after_minutes: float = 30.0
    # Bytes of encoded runs and step lists kept in memory per process (db/run_cache.py); 0 = off.
    run_cache_bytes: int = 32 * 1024 * 1024
    # The change stream (events/): how long events are kept for clients that resume, how often an
    # idle stream sends a heartbeat comment, how many events may wait for one slow client.
    events_retention_seconds: float = 3600.0
    events_heartbeat_seconds: float = 15.0
    events_client_queue: int = 10_000
    log_level: str = "INFO"
    debug: bool = False


def _env(env: Mapping[str, str | None], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _int(env: Mapping[str, str | None], name: str, default: int, lo: int, hi: int) -> int:
    raw = _env(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer between {lo} and {hi}, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be an integer between {lo} and {hi}, got {raw!r}")
    return value


def _float(env: Mapping[str, str | None], name: str, default: float, lo: float) -> float:
    raw = _env(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number >= {lo}, got {raw!r}") from None
    if not value >= lo:
        raise ConfigError(f"{name} must be a number >= {lo}, got {raw!r}")
    return value


def _bool(env: Mapping[str, str | None], name: str, default: bool) -> bool:
    raw = _env(env, name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _database_url(env: Mapping[str, str | None]) -> str | None:
    url = _env(env, "DATABASE_URL")
    if url is not None:
        if not url.startswith(("postgresql://", "postgres://")) and "=" not in url:
            raise ConfigError(f"DATABASE_URL must be a postgresql:// URL or a libpq 'key=value' string, got {url!r}")
        return url
    host = _env(env, "DB_HOST")
    if host is None:
        return None
    port = _int(env, "DB_PORT", 5432, 1, 65535)
    name = _env(env, "DB_NAME") or "postgres"
    user = _env(env, "DB_USER") or "postgres"
    password = _env(env, "DB_PASSWORD")
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    # A host that is a directory is a unix-socket path, which libpq takes as a query parameter.
    if host.startswith("/"):
        return f"postgresql://{auth}@/{quote(name, safe='')}?host={quote(host, safe='')}&port={port}"
    return f"postgresql://{auth}@{host}:{port}/{quote(name, safe='')}"


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = PROJECT_DIR / ".env") -> Settings:
    """Build Settings from `.env` (if present) overlaid by the environment; raise ConfigError."""
    env: dict[str, str | None] = {}
    if env_file is not None and env_file.is_file():
        env.update(dotenv_values(env_file))
    env.update(os.environ if environ is None else environ)

    schema = _env(env, "DB_SCHEMA") or "public"
    if not _IDENTIFIER.match(schema):
        raise ConfigError(f"DB_SCHEMA must be a plain SQL identifier (letters, digits, _), got {schema!r}")
    pool_min = _int(env, "DB_POOL_MIN", 2, 1, 1000)
    pool_max = _int(env, "DB_POOL_MAX", max(20, pool_min), 1, 1000)
    if pool_max < pool_min:
        raise ConfigError(f"DB_POOL_MAX ({pool_max}) must be >= DB_POOL_MIN ({pool_min})")
    log_level = (_env(env, "LOG_LEVEL") or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {log_level!r}")
    pg_dir = _env(env, "EMBEDDED_PG_DIR")
    return Settings(
        database_url=_database_url(env),
        db_schema=schema,
        host=_env(env, "HOST") or "127.0.0.1",
        port=_int(env, "PORT", 8000, 1, 65535),
        embedded_pg_dir=Path(pg_dir).expanduser().resolve() if pg_dir else PROJECT_DIR / ".pgdata",
        pool_min_size=pool_min,
        pool_max_size=pool_max,
        pool_timeout=_float(env, "DB_POOL_TIMEOUT", 5.0, 0.1),
        statement_timeout_ms=_int(env, "DB_STATEMENT_TIMEOUT_MS", 15_000, 0, 3_600_000),
        health_timeout=_float(env, "HEALTH_TIMEOUT", 2.0, 0.1),
        migrate_on_start=_bool(env, "MIGRATE_ON_START", True),
        request_max_body_size=_int(env, "MAX_BODY_BYTES", 10 * 1024 * 1024, 1024, 1024**3),
        max_state_bytes=_int(env, "MAX_STATE_BYTES", 1024 * 1024, 1024, 1024**3),
        idempotency_ttl_hours=_float(env, "IDEMPOTENCY_TTL_HOURS", 24.0, 0.0),
        stuck_after_minutes=_float(env, "STUCK_AFTER_MINUTES", 30.0, 0.0),
        run_cache_bytes=_int(env, "RUN_CACHE_BYTES", 32 * 1024 * 1024, 0, 1024**3),
        events_retention_seconds=_float(env, "EVENTS_RETENTION_SECONDS", 3600.0, 1.0),
        events_heartbeat_seconds=_float(env, "EVENTS_HEARTBEAT_SECONDS", 15.0, 0.1),
        events_client_queue=_int(env, "EVENTS_CLIENT_QUEUE", 10_000, 1000, 1_000_000),
        log_level=log_level,
        debug=_bool(env, "DEBUG", False),
    )
