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

from auth.ratelimit import parse_rate_limit
from auth.tokens import ConfiguredKey, parse_api_keys

PROJECT_DIR: Final = Path(__file__).resolve().parent
# Paths anyone may call even when keys are required (each with everything below it): probes,
# the docs pages and their assets, the OpenAPI document, metrics, and the API's front page.
DEFAULT_OPEN_PATHS: Final = (
    "/",
    "/health",
    "/docs",
    "/redoc",
    "/elements",
    "/openapi.json",
    "/_static",
    "/metrics",
    "/oauth2-redirect.html",
)
CORS_METHODS: Final = ("GET", "POST", "PATCH", "DELETE", "OPTIONS")
CORS_HEADERS: Final = ("Authorization", "Content-Type", "Idempotency-Key", "If-Match", "If-None-Match", "X-Request-ID")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


# The password of a URL (`user:secret@`, `?password=secret`) or of a key=value string.
_URL_PASSWORD = re.compile(r"(://[^:/@?#\s]*:)([^@/?#\s]+)(@)")
_PARAM_PASSWORD = re.compile(r"([?&]password=)([^&#\s]+)", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE)


def mask_password(url: str) -> str:
    """`url` with any password replaced by `***`, for logs and error messages."""
    url = _URL_PASSWORD.sub(r"\1***\3", url)
    url = _PARAM_PASSWORD.sub(r"\1***", url)
    if "://" not in url:
        url = _KV_PASSWORD.sub(r"\1***", url)
    return url


class ConfigError(ValueError):
    """A setting has a value the service cannot use; the message names the setting."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # None means "no database configured": an embedded PostgreSQL is started in `embedded_pg_dir`.
    database_url: str | None = None
    # What needs a session (migrations, LISTEN, the folder's advisory locks) connects here when
    # DATABASE_URL goes through a transaction-pooling PgBouncer; None means DATABASE_URL.
    database_direct_url: str | None = None
    # "transaction": DATABASE_URL is a transaction-mode pooler (README, "Behind PgBouncer").
    db_pooler: str = "none"
    # A hot standby for list reads (db/replica.py, docs/scaling.md); None means none.
    database_read_url: str | None = None
    # A replica further behind than this (seconds) is not read from; a read that must see a write
    # waits at most replica_wait_ms for the replica to replay it, then goes to the primary.
    replica_max_lag_seconds: float = 5.0
    replica_wait_ms: int = 250
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
    # "text" (one readable line per record) or "json" (one JSON object per line).
    log_format: str = "text"
    debug: bool = False
    # Keys from API_KEYS (hashes only); keys also live in the table migration_api_keys.
    api_keys: tuple[ConfiguredKey, ...] = ()
    # The HMAC key of token hashes; changing it invalidates every key in the table.
    api_key_pepper: str = "migration-api"
    auth_open_paths: tuple[str, ...] = DEFAULT_OPEN_PATHS
    # How long a process trusts a key lookup (a revoked key works at most this much longer).
    auth_cache_seconds: float = 2.0
    # Requests per key (per client address in open mode) per unit; None = no limit.
    rate_limit: tuple[str, int] | None = ("second", 100)
    # Shares rate-limit budgets across workers and instances; None = per process.
    redis_url: str | None = None
    redis_namespace: str = "migration_api"
    # CORS: off unless origins are given.
    cors_allow_origins: tuple[str, ...] = ()
    cors_allow_methods: tuple[str, ...] = CORS_METHODS
    cors_allow_headers: tuple[str, ...] = CORS_HEADERS
    cors_allow_credentials: bool = False
    cors_max_age: int = 600


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


def _libpq_url(env: Mapping[str, str | None], name: str) -> str | None:
    url = _env(env, name)
    if url is not None and not url.startswith(("postgresql://", "postgres://")) and "=" not in url:
        raise ConfigError(
            f"{name} must be a postgresql:// URL or a libpq 'key=value' string, got {mask_password(url)!r}"
        )
    return url


def _list(env: Mapping[str, str | None], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = _env(env, name)
    if raw is None:
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _open_paths(env: Mapping[str, str | None]) -> tuple[str, ...]:
    if (_env(env, "AUTH_OPEN_PATHS") or "").lower() == "none":
        return ()
    paths = _list(env, "AUTH_OPEN_PATHS", DEFAULT_OPEN_PATHS)
    bad = [p for p in paths if not p.startswith("/")]
    if bad:
        raise ConfigError(f"AUTH_OPEN_PATHS holds paths that start with '/', got {bad[0]!r}")
    return paths


def _database_url(env: Mapping[str, str | None]) -> str | None:
    url = _libpq_url(env, "DATABASE_URL")
    if url is not None:
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
    database_url = _database_url(env)
    direct_url = _libpq_url(env, "DATABASE_DIRECT_URL")
    pooler = (_env(env, "DB_POOLER") or "none").lower()
    if pooler not in {"none", "transaction"}:
        raise ConfigError(f"DB_POOLER must be none or transaction, got {pooler!r}")
    if pooler == "transaction" and (database_url is None or direct_url is None):
        raise ConfigError(
            "DB_POOLER=transaction needs DATABASE_URL (the pooler) and DATABASE_DIRECT_URL (the server itself, "
            "for migrations, LISTEN and advisory locks)"
        )
    log_format = (_env(env, "LOG_FORMAT") or "text").lower()
    if log_format not in {"text", "json"}:
        raise ConfigError(f"LOG_FORMAT must be text or json, got {log_format!r}")
    pepper = _env(env, "API_KEY_PEPPER") or "migration-api"
    try:
        api_keys = parse_api_keys(_env(env, "API_KEYS") or "", pepper)
    except ValueError as exc:
        raise ConfigError(f"API_KEYS: {exc}") from None
    try:
        rate_limit = parse_rate_limit(_env(env, "RATE_LIMIT") or "100/second")
    except ValueError as exc:
        raise ConfigError(f"RATE_LIMIT: {exc}") from None
    redis_url = _env(env, "REDIS_URL")
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL must be a redis://, rediss:// or unix:// URL, got {redis_url!r}")
    return Settings(
        database_url=database_url,
        database_direct_url=direct_url,
        db_pooler=pooler,
        database_read_url=_libpq_url(env, "DATABASE_READ_URL"),
        replica_max_lag_seconds=_float(env, "REPLICA_MAX_LAG_SECONDS", 5.0, 0.1),
        replica_wait_ms=_int(env, "REPLICA_WAIT_MS", 250, 0, 60_000),
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
        log_format=log_format,
        debug=_bool(env, "DEBUG", False),
        api_keys=api_keys,
        api_key_pepper=pepper,
        auth_open_paths=_open_paths(env),
        auth_cache_seconds=_float(env, "AUTH_CACHE_SECONDS", 2.0, 0.0),
        rate_limit=rate_limit,
        redis_url=redis_url,
        redis_namespace=_env(env, "REDIS_NAMESPACE") or "migration_api",
        cors_allow_origins=_list(env, "CORS_ALLOW_ORIGINS", ()),
        cors_allow_methods=_list(env, "CORS_ALLOW_METHODS", CORS_METHODS),
        cors_allow_headers=_list(env, "CORS_ALLOW_HEADERS", CORS_HEADERS),
        cors_allow_credentials=_bool(env, "CORS_ALLOW_CREDENTIALS", False),
        cors_max_age=_int(env, "CORS_MAX_AGE", 600, 0, 86_400),
    )
