"""The connection pool every repository shares."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool

from config import ConfigError, Settings
from db.loaders import load_json, tolerant_adapters

# A connection not handed out for longer than this is checked (one round trip) before use; a busy
# pool skips the check. (A `reset` callback would be the natural place to note the return time,
# but with one the pool returns every connection through a worker task, which costs more than
# the check saves.)
IDLE_CHECK_SECONDS = 2.0


def connection_options(settings: Settings) -> str:
    """libpq `options`: schema search path, statement timeout and UTC timestamps."""
    return (
        f"-c search_path={settings.db_schema},public"
        f" -c statement_timeout={settings.statement_timeout_ms}"
        " -c TimeZone=UTC"
    )


def pool_connection_kwargs(settings: Settings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "application_name": "migration-api",
        "context": tolerant_adapters(),
    }
    if settings.db_pooler == "transaction":
        kwargs["prepare_threshold"] = None
    else:
        kwargs["options"] = connection_options(settings)
    return kwargs


async def _check_if_idle(conn: psycopg.AsyncConnection[Any]) -> None:
    now = time.monotonic()
    last_used = getattr(conn, "_migration_api_last_used", 0.0)
    conn._migration_api_last_used = now  # type: ignore[attr-defined]
    if now - last_used > IDLE_CHECK_SECONDS:
        await AsyncConnectionPool.check_connection(conn)


def create_pool(url: str, settings: Settings) -> AsyncConnectionPool:
    """A pool of autocommit connections (opened by the caller with `await pool.open()`).

    Their adapters read what engines store that Python cannot hold (db/loaders.py). Behind a
    transaction-mode pooler (`DB_POOLER=transaction`) a statement may run on another server
    connection than the one before it, so the pool prepares nothing (a prepared statement lives in
    one server session) and sends no `options` (PgBouncer refuses them; the pooler's database
    entry or the role sets the search path, see the README).
    """
    # msgspec parses and writes JSONB several times faster than the json module.
    set_json_loads(load_json)
    set_json_dumps(msgspec.json.encode)
    return AsyncConnectionPool(
        url,
        open=False,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout,
        check=_check_if_idle,
        name="migration-api",
        kwargs=pool_connection_kwargs(settings),
    )


async def check_pooled_schema(pool: AsyncConnectionPool, settings: Settings) -> None:
    """Behind a transaction-mode pooler the pool cannot set the search path itself: refuse to start
    (ConfigError, one line) unless the pooler or the role already resolves names to DB_SCHEMA."""
    if settings.db_pooler != "transaction":
        return
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT current_schema()")).fetchone()
    found = row[0] if row else None
    if found != settings.db_schema:
        raise ConfigError(
            f"DB_POOLER=transaction: connections through DATABASE_URL resolve names in schema {found!r}, "
            f"not DB_SCHEMA {settings.db_schema!r}; set the search path in the pooler's database entry "
            f"(connect_query='SET search_path = {settings.db_schema}, public') or on the role "
            f"(ALTER ROLE ... SET search_path = {settings.db_schema}, public)"
        )
