"""The Migration-Accelerators API: `create_app()` builds it; `python app.py` or `uvicorn app:app` serve it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import Message, Scope
from psycopg_pool import AsyncConnectionPool

from auth import SECURITY_SCHEME, KeyRing, auth_middleware, require_scope
from auth.controller import ApiKeysController
from auth.ratelimit import STORE_NAME, rate_limit_middleware, rate_limit_store
from cache import RunCache, listen
from changelog import Folder
from changelog.folder import stop as stop_task
from config import ConfigError, Settings, load_settings
from controllers.common import check_input
from controllers.lenient import TimestampPlusMiddleware
from controllers.runs import RunsController
from controllers.stats import StatsController
from controllers.steps import StepsController
from controllers.system import API_DESCRIPTION, API_NAME, API_VERSION, OPEN_MODE_WARNING, SystemController
from controllers.timeline import TimelineController
from db.embedded import start_embedded
from db.outage import Gate, heartbeat
from db.pool import create_pool
from db.schema import ensure_schema, repair_schema
from docs_site import StrictStructSchemaPlugin, mark_optional_bodies, openapi_config, static_routers
from errors import EXCEPTION_HANDLERS
from observability import metrics
from observability.logs import configure_logging
from observability.requests import RequestLogMiddleware

logger = logging.getLogger("migration_api")


@asynccontextmanager
async def database_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Start the embedded server if no database is configured, bring the schema up, open the pool,
    start the database heartbeat (db/outage.py), the change-log folder and the read cache's
    listener; warn when no API key is configured (open mode)."""
    settings: Settings = app.state.settings
    embedded = None
    url = settings.database_url
    if url is None:
        embedded = await anyio.to_thread.run_sync(start_embedded, settings.embedded_pg_dir)
        url = embedded.url
    try:
        version = 0
        if settings.migrate_on_start:
            report = await anyio.to_thread.run_sync(ensure_schema, url, settings.db_schema)
            version = report.version
        gate: Gate = app.state.gate
        pool = create_pool(url, settings, gate)
        await pool.open(wait=True, timeout=max(settings.pool_timeout, 10.0))
        app.state.pool = pool
        app.state.embedded = embedded
        app.state.schema_version = version
        app.state.keyring.pool = pool
        tasks: list[asyncio.Task[None]] = app.state.background_tasks
        tasks.append(asyncio.create_task(heartbeat(gate, url, pool.check), name="database-heartbeat"))
        if await _change_log_installed(pool):
            cache = RunCache(settings.run_cache_bytes) if settings.run_cache_bytes > 0 else None
            if cache is not None:
                cache.gate = gate
            folder = Folder(url, settings.db_schema, pool, cache, repair=repair_schema)
            app.state.run_cache, app.state.folder = cache, folder
            tasks.append(asyncio.create_task(folder.run(), name="change-log-folder"))
            if cache is not None:
                tasks.append(asyncio.create_task(listen(cache, url), name="run-cache-listener"))
        metrics.watch(app.state)
        if not await app.state.keyring.keyed():
            logger.warning("%s", OPEN_MODE_WARNING)
        try:
            yield
        finally:
            metrics.unwatch(app.state)
            for task in tasks:
                await stop_task(task)
            tasks.clear()
            await pool.close()
    finally:
        if embedded is not None:
            await anyio.to_thread.run_sync(embedded.stop)


async def _change_log_installed(pool: AsyncConnectionPool) -> bool:
    """Whether the change log and its triggers exist (schema version 9): without them (a role that
    may not create objects) there is nothing to fold, statistics read the base tables and the read
    cache stays off."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT to_regclass('migration_api_machinery') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_trigger "
            "WHERE tgrelid = to_regclass('migration_runs') AND tgname = 'migration_api_log_update')"
        )
        row = await cur.fetchone()
        return bool(row and row[0])


async def forget_written_run(message: Message, scope: Scope) -> None:
    """As a write under /api/v1/migrations starts its response (its transaction has committed),
    fold the change log (statistics and search then include the write, and every process drops
    the runs it touched), and drop the run from this process's cache at once, so that the writer
    reads its own write."""
    if message["type"] != "http.response.start" or scope.get("method") in {"GET", "HEAD", "OPTIONS"}:
        return
    state = scope["litestar_app"].state
    cache: RunCache | None = state.run_cache
    parts = scope["path"].split("/")
    if cache is not None and len(parts) > 4:
        with contextlib.suppress(ValueError):
            cache.invalidate([uuid.UUID(parts[4])])
    folder: Folder | None = state.folder
    if folder is not None and message["status"] < 400:
        await folder.fold_now()


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the application; reads the environment only when no settings are given."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    # Outermost first: the request line and its id, timestamps' `+` read as meant, then metrics
    # (which see every answer, 401 and 429 included), then who is calling, then their budget
    # (which needs to know who).
    middleware: list[Any] = [
        RequestLogMiddleware(),
        TimestampPlusMiddleware(),
        metrics.metrics_middleware(),
        auth_middleware(settings.auth_open_paths),
    ]
    if settings.rate_limit is not None:
        middleware.append(rate_limit_middleware(settings.rate_limit, settings.auth_open_paths))  # type: ignore[arg-type]
    return Litestar(
        route_handlers=[
            SystemController,
            RunsController,
            StepsController,
            StatsController,
            TimelineController,
            ApiKeysController,
            metrics.MetricsController,
            *static_routers(),
        ],
        lifespan=[database_lifespan],
        on_startup=[mark_optional_bodies],
        state=_initial_state(settings),
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[forget_written_run],
        before_request=check_input,
        middleware=middleware,
        guards=[require_scope],
        plugins=[StrictStructSchemaPlugin()],
        stores={STORE_NAME: rate_limit_store(settings.redis_url, settings.redis_namespace)},
        cors_config=_cors(settings),
        openapi_config=openapi_config(
            title=API_NAME,
            version=API_VERSION,
            description=API_DESCRIPTION,
            components=Components(
                security_schemes={
                    SECURITY_SCHEME: SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description=(
                            "An API key's token: `Authorization: Bearer <token>`. Each operation names the "
                            "scope it needs (read, write or admin); in open mode no key is needed."
                        ),
                    )
                }
            ),
        ),
        # observability/logs.py configures logging; errors.py logs every 5xx once, with method and path.
        logging_config=None,
        request_max_body_size=settings.request_max_body_size,
        debug=settings.debug,
    )


def _cors(settings: Settings) -> CORSConfig | None:
    if not settings.cors_allow_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_allow_origins),
        allow_methods=list(settings.cors_allow_methods),  # type: ignore[arg-type]
        allow_headers=list(settings.cors_allow_headers),
        allow_credentials=settings.cors_allow_credentials,
        expose_headers=[
            "ETag",
            "Link",
            "Location",
            "Retry-After",
            "X-Request-ID",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "RateLimit-Policy",
        ],
        max_age=settings.cors_max_age,
    )


def _initial_state(settings: Settings) -> State:
    return State(
        {
            "settings": settings,
            "embedded": None,
            "schema_version": 0,
            "run_cache": None,
            "folder": None,
            "background_tasks": [],
            "gate": Gate(),
            "keyring": KeyRing(settings.api_keys, settings.api_key_pepper, settings.auth_cache_seconds),
        }
    )


_app: Litestar | None = None


def __getattr__(name: str) -> Litestar:
    # `uvicorn app:app` needs a module attribute; building it lazily keeps imports side-effect free.
    global _app
    if name != "app":
        raise AttributeError(name)
    if _app is None:
        try:
            _app = create_app()
        except ConfigError as exc:
            raise SystemExit(f"configuration error: {exc}") from None
    return _app


def main(argv: list[str] | None = None) -> None:
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(description="Serve the Migration-Accelerators API (HOST/PORT from the env).")
    parser.add_argument("--reload", action="store_true", help="restart when a source file changes")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (not with --reload)")
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    # uvicorn's own lines go through the service's formatter (observability/logs.py); the
    # service logs one line per request itself, so uvicorn's access line is off.
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "app:app",
        host=settings.host,
        port=settings.port,
        reload=args.reload,
        workers=None if args.reload else args.workers,
        timeout_graceful_shutdown=5,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
