"""Settings: read once from the environment and an optional `.env` file (the environment wins).

`Settings` states each setting once: its type, its bounds (`msgspec.Meta`) and its default.
`load_settings` gathers the variables that are set (ENVIRONMENT names the field each one fills),
and msgspec converts and checks them (`strict=False`: text becomes numbers and booleans); a
refusal becomes a one-line ConfigError that names the variable and says what it takes. The few
settings that are more than a typed value (DATABASE_URL or DB_*, API_KEYS, RATE_LIMIT, lists,
paths) are prepared before the conversion.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args, get_type_hints
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


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # None means "no database configured": an embedded PostgreSQL is started in `embedded_pg_dir`.
    database_url: str | None = None
    # What needs a session (migrations, LISTEN, the folder's advisory locks) connects here when
    # DATABASE_URL goes through a transaction-pooling PgBouncer; None means DATABASE_URL.
    database_direct_url: str | None = None
    # "transaction": DATABASE_URL is a transaction-mode pooler (README, "Behind PgBouncer").
    db_pooler: Literal["none", "transaction"] = "none"
    # A hot standby for list reads (db/replica.py, docs/scaling.md); None means none.
    database_read_url: str | None = None
    # A replica further behind than this (seconds) is not read from; a read that must see a write
    # waits at most replica_wait_ms for the replica to replay it, then goes to the primary.
    replica_max_lag_seconds: Annotated[float, msgspec.Meta(ge=0.1)] = 5.0
    replica_wait_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 250
    db_schema: str = "public"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    embedded_pg_dir: Path = PROJECT_DIR / ".pgdata"
    pool_min_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 2
    # Unset: this or pool_min_size, whichever is larger.
    pool_max_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20
    # Seconds a request may wait for a pooled connection before it is answered 503.
    pool_timeout: Annotated[float, msgspec.Meta(ge=0.1)] = 5.0
    # Milliseconds one SQL statement may run before PostgreSQL cancels it (503 to the client).
    statement_timeout_ms: Annotated[int, msgspec.Meta(ge=0, le=3_600_000)] = 15_000
    # Seconds /health waits for the database before it answers 503.
    health_timeout: Annotated[float, msgspec.Meta(ge=0.1)] = 2.0
    # Create missing tables and indexes at startup (never drops or alters what exists).
    migrate_on_start: bool = True
    request_max_body_size: Annotated[int, msgspec.Meta(ge=1024, le=1024**3)] = 10 * 1024 * 1024
    # Largest accepted JSON body of one step state or checkpoint, in bytes.
    max_state_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1024**3)] = 1024 * 1024
    idempotency_ttl_hours: Annotated[float, msgspec.Meta(ge=0.0)] = 24.0
    stuck_after_minutes: Annotated[float, msgspec.Meta(ge=0.0)] = 30.0
    # Bytes of encoded runs and step lists kept in memory per process (db/run_cache.py); 0 = off.
    run_cache_bytes: Annotated[int, msgspec.Meta(ge=0, le=1024**3)] = 32 * 1024 * 1024
    # The change stream (events/): how long events are kept for clients that resume, how often an
    # idle stream sends a heartbeat comment, how many events may wait for one slow client.
    events_retention_seconds: Annotated[float, msgspec.Meta(ge=1.0)] = 3600.0
    events_heartbeat_seconds: Annotated[float, msgspec.Meta(ge=0.1)] = 15.0
    events_client_queue: Annotated[int, msgspec.Meta(ge=1000, le=1_000_000)] = 10_000
    log_level: LogLevel = "INFO"
    # "text" (one readable line per record) or "json" (one JSON object per line).
    log_format: Literal["text", "json"] = "text"
    debug: bool = False
    # Keys from API_KEYS (hashes only); keys also live in the table migration_api_keys.
    api_keys: tuple[ConfiguredKey, ...] = ()
    # The HMAC key of token hashes; changing it invalidates every key in the table.
    api_key_pepper: str = "migration-api"
    auth_open_paths: tuple[str, ...] = DEFAULT_OPEN_PATHS
    # How long a process trusts a key lookup (a revoked key works at most this much longer).
    auth_cache_seconds: Annotated[float, msgspec.Meta(ge=0.0)] = 2.0
    # Requests per key (per client address in open mode) per unit, as RATE_LIMIT "N/unit"; None = no limit.
    rate_limit: tuple[str, int] | None = ("second", 100)
    # Shares rate-limit budgets across workers and instances; None = per process.
    redis_url: str | None = None
    redis_namespace: str = "migration_api"
    # CORS: off unless origins are given.
    cors_allow_origins: tuple[str, ...] = ()
    cors_allow_methods: tuple[str, ...] = CORS_METHODS
    cors_allow_headers: tuple[str, ...] = CORS_HEADERS
    cors_allow_credentials: bool = False
    cors_max_age: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 600


# Each variable that holds one typed value, and the field of Settings it fills.
ENVIRONMENT: Final = {
    "DB_POOLER": "db_pooler",
    "REPLICA_MAX_LAG_SECONDS": "replica_max_lag_seconds",
    "REPLICA_WAIT_MS": "replica_wait_ms",
    "HOST": "host",
    "PORT": "port",
    "DB_POOL_MIN": "pool_min_size",
    "DB_POOL_MAX": "pool_max_size",
    "DB_POOL_TIMEOUT": "pool_timeout",
    "DB_STATEMENT_TIMEOUT_MS": "statement_timeout_ms",
    "HEALTH_TIMEOUT": "health_timeout",
    "MIGRATE_ON_START": "migrate_on_start",
    "MAX_BODY_BYTES": "request_max_body_size",
    "MAX_STATE_BYTES": "max_state_bytes",
    "IDEMPOTENCY_TTL_HOURS": "idempotency_ttl_hours",
    "STUCK_AFTER_MINUTES": "stuck_after_minutes",
    "RUN_CACHE_BYTES": "run_cache_bytes",
    "EVENTS_RETENTION_SECONDS": "events_retention_seconds",
    "EVENTS_HEARTBEAT_SECONDS": "events_heartbeat_seconds",
    "EVENTS_CLIENT_QUEUE": "events_client_queue",
    "LOG_LEVEL": "log_level",
    "LOG_FORMAT": "log_format",
    "DEBUG": "debug",
    "API_KEY_PEPPER": "api_key_pepper",
    "AUTH_CACHE_SECONDS": "auth_cache_seconds",
    "REDIS_NAMESPACE": "redis_namespace",
    "CORS_ALLOW_CREDENTIALS": "cors_allow_credentials",
    "CORS_MAX_AGE": "cors_max_age",
}
_CASED: Final = {"LOG_LEVEL": str.upper, "LOG_FORMAT": str.lower, "DB_POOLER": str.lower}
_BOOLEAN_WORDS: Final = {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false", "off": "false"}
DB_PORT: Final = Annotated[int, msgspec.Meta(ge=1, le=65535)]


def _env(env: Mapping[str, str | None], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _what_it_takes(field: str) -> str:
    """What this field of Settings accepts, in the words of its error message."""
    info = _FIELD_TYPES[field]
    if isinstance(info, msgspec.inspect.IntType):
        return f"an integer between {info.ge} and {info.le}"
    if isinstance(info, msgspec.inspect.FloatType):
        return f"a number >= {info.ge}"
    if isinstance(info, msgspec.inspect.BoolType):
        return "true or false"
    if isinstance(info, msgspec.inspect.LiteralType):
        values = [str(v) for v in get_args(_HINTS[field])]  # in the order written (msgspec sorts them)
        return " or ".join(values) if len(values) == 2 else f"one of {', '.join(values)}"
    return "text"


_HINTS: Final = get_type_hints(Settings, include_extras=True)
_FIELD_TYPES: Final = {f.name: f.type for f in msgspec.inspect.type_info(Settings).fields}  # type: ignore[attr-defined]
# The typed fields of Settings, all optional: msgspec converts and checks only the ones set.
_Typed: Final = msgspec.defstruct(
    "_Typed",
    [(field, _HINTS[field] | msgspec.UnsetType, msgspec.UNSET) for field in ENVIRONMENT.values()],
    kw_only=True,
)


_DEFAULTS: Final = {f.name: f.default for f in msgspec.structs.fields(Settings)}


def _typed(env: Mapping[str, str | None]) -> dict[str, Any]:
    """The typed settings that are set, converted and checked by msgspec; ConfigError names a bad one."""
    raw: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, field in ENVIRONMENT.items():
        value = _env(env, name)
        if value is None:
            continue
        value = _CASED.get(name, str)(value)
        if isinstance(_FIELD_TYPES[field], msgspec.inspect.BoolType):
            value = _BOOLEAN_WORDS.get(value.lower(), value.lower())
        raw[field], names[field] = value, name
    try:
        typed = msgspec.convert(raw, _Typed, strict=False)
    except msgspec.ValidationError as exc:
        field = str(exc).rpartition("$.")[2].rstrip("`")
        raise ConfigError(f"{names[field]} must be {_what_it_takes(field)}, got {raw[field]!r}") from None
    return {field: getattr(typed, field) for field in raw}


def _libpq_url(env: Mapping[str, str | None], name: str) -> str | None:
    url = _env(env, name)
    if url is not None and not url.startswith(("postgresql://", "postgres://")) and "=" not in url:
        raise ConfigError(
            f"{name} must be a postgresql:// URL or a libpq 'key=value' string, got {mask_password(url)!r}"
        )
    return url


def _list(env: Mapping[str, str | None], name: str) -> tuple[str, ...] | None:
    raw = _env(env, name)
    if raw is None:
        return None
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _open_paths(env: Mapping[str, str | None]) -> tuple[str, ...] | None:
    if (_env(env, "AUTH_OPEN_PATHS") or "").lower() == "none":
        return ()
    paths = _list(env, "AUTH_OPEN_PATHS")
    bad = [p for p in paths or () if not p.startswith("/")]
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
    raw_port = _env(env, "DB_PORT") or "5432"
    try:
        port = msgspec.convert(raw_port, DB_PORT, strict=False)
    except msgspec.ValidationError:
        raise ConfigError(f"DB_PORT must be an integer between 1 and 65535, got {raw_port!r}") from None
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

    values = _typed(env)
    schema = _env(env, "DB_SCHEMA")
    if schema is not None:
        if not _IDENTIFIER.match(schema):
            raise ConfigError(f"DB_SCHEMA must be a plain SQL identifier (letters, digits, _), got {schema!r}")
        values["db_schema"] = schema
    if "pool_max_size" not in values:
        values["pool_max_size"] = max(
            _DEFAULTS["pool_max_size"], values.get("pool_min_size", _DEFAULTS["pool_min_size"])
        )
    pool_min = values.get("pool_min_size", _DEFAULTS["pool_min_size"])
    if values["pool_max_size"] < pool_min:
        raise ConfigError(f"DB_POOL_MAX ({values['pool_max_size']}) must be >= DB_POOL_MIN ({pool_min})")
    pg_dir = _env(env, "EMBEDDED_PG_DIR")
    if pg_dir:
        values["embedded_pg_dir"] = Path(pg_dir).expanduser().resolve()
    values["database_url"] = database_url = _database_url(env)
    values["database_direct_url"] = direct_url = _libpq_url(env, "DATABASE_DIRECT_URL")
    values["database_read_url"] = _libpq_url(env, "DATABASE_READ_URL")
    if values.get("db_pooler") == "transaction" and (database_url is None or direct_url is None):
        raise ConfigError(
            "DB_POOLER=transaction needs DATABASE_URL (the pooler) and DATABASE_DIRECT_URL (the server itself, "
            "for migrations, LISTEN and advisory locks)"
        )
    try:
        values["api_keys"] = parse_api_keys(
            _env(env, "API_KEYS") or "", values.get("api_key_pepper", _DEFAULTS["api_key_pepper"])
        )
    except ValueError as exc:
        raise ConfigError(f"API_KEYS: {exc}") from None
    rate_limit = _env(env, "RATE_LIMIT")
    if rate_limit is not None:
        try:
            values["rate_limit"] = parse_rate_limit(rate_limit)
        except ValueError as exc:
            raise ConfigError(f"RATE_LIMIT: {exc}") from None
    redis_url = _env(env, "REDIS_URL")
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL must be a redis://, rediss:// or unix:// URL, got {redis_url!r}")
    values["redis_url"] = redis_url
    lists = {
        "auth_open_paths": _open_paths(env),
        "cors_allow_origins": _list(env, "CORS_ALLOW_ORIGINS"),
        "cors_allow_methods": _list(env, "CORS_ALLOW_METHODS"),
        "cors_allow_headers": _list(env, "CORS_ALLOW_HEADERS"),
    }
    values.update({field: value for field, value in lists.items() if value is not None})
    return Settings(**values)
