"""The connection pool every repository shares."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from psycopg_pool.pool_async import AddConnection

from config import ConfigError, Settings
from db.loaders import load_json, tolerant_adapters
from db.outage import KEEPALIVE_KWARGS, MAX_RECONNECT_DELAY, WAIT_SLICE_SECONDS, Gate

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
        **KEEPALIVE_KWARGS,
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


class GatedPool(AsyncConnectionPool):
    """psycopg's pool behind the outage gate (db/outage.py): no wait for a connection while the
    database is known to be away, and reconnection attempts at least every MAX_RECONNECT_DELAY."""

    gate: Gate

    async def getconn(self, timeout: float | None = None) -> psycopg.AsyncConnection[Any]:  # noqa: ASYNC109
        if not self.gate.is_open:
            raise self.gate.refuse()
        # Wait in slices, so that a request queued when the gate closes is let go at once.
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            try:
                return await super().getconn(timeout=max(0.001, min(WAIT_SLICE_SECONDS, remaining)))
            except PoolTimeout:
                if not self.gate.is_open:
                    raise self.gate.refuse() from None
                if time.monotonic() >= deadline:
                    raise

    async def schedule_task(self, task: Any, delay: float) -> None:
        # The pool backs off 1, 2, 4, 8 ... s between reconnection attempts; capped, it reconnects
        # within a second of the database's return however long it was gone.
        if isinstance(task, AddConnection):
            delay = min(delay, MAX_RECONNECT_DELAY)
        await super().schedule_task(task, delay)


def create_pool(url: str, settings: Settings, gate: Gate | None = None) -> GatedPool:
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
    pool = GatedPool(
        url,
        open=False,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout,
        check=_check_if_idle,
        name="migration-api",
        kwargs=pool_connection_kwargs(settings),
    )
    pool.gate = gate or Gate()
    return pool


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
