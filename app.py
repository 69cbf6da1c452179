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
from litestar.logging.config import LoggingConfig
from litestar.types import Message, Scope
from psycopg_pool import AsyncConnectionPool

from cache import RunCache, listen
from changelog import Folder
from changelog.folder import stop as stop_task
from config import ConfigError, Settings, load_settings
from controllers.events import EventsController
from controllers.runs import RunsController
from controllers.stats import StatsController
from controllers.steps import StepsController
from controllers.system import API_DESCRIPTION, API_NAME, API_VERSION, SystemController
from controllers.timeline import TimelineController
from dashboard import DashboardController, dashboard_static_router, template_config
from db.embedded import start_embedded
from db.pool import create_pool
from db.schema import ensure_schema, repair_schema
from docs_site import openapi_config, static_routers
from errors import EXCEPTION_HANDLERS
from events import Hub, end_streams_on_signals

logger = logging.getLogger("migration_api")


@asynccontextmanager
async def database_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Start the embedded server if no database is configured, bring the schema up, open the pool,
    start the change-log folder and the read cache's listener."""
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
        pool = create_pool(url, settings)
        await pool.open(wait=True, timeout=max(settings.pool_timeout, 10.0))
        app.state.pool = pool
        app.state.embedded = embedded
        app.state.schema_version = version
        tasks: list[asyncio.Task[None]] = []
        restore_signals = None
        if await _change_log_installed(pool):
            cache = RunCache(settings.run_cache_bytes) if settings.run_cache_bytes > 0 else None
            folder = Folder(
                url,
                settings.db_schema,
                pool,
                cache,
                repair=repair_schema,
                events_retention=settings.events_retention_seconds,
            )
            hub = Hub(url, pool, queue_size=settings.events_client_queue)
            app.state.run_cache, app.state.folder, app.state.hub = cache, folder, hub
            tasks.append(asyncio.create_task(folder.run(), name="change-log-folder"))
            tasks.append(asyncio.create_task(hub.run(), name="event-listener"))
            restore_signals = end_streams_on_signals(hub)
            if cache is not None:
                tasks.append(asyncio.create_task(listen(cache, url), name="run-cache-listener"))
        try:
            yield
        finally:
            if app.state.hub is not None:
                app.state.hub.close()
            if restore_signals is not None:
                restore_signals()
            for task in tasks:
                await stop_task(task)
            await pool.close()
    finally:
        if embedded is not None:
            await anyio.to_thread.run_sync(embedded.stop)


async def _change_log_installed(pool: AsyncConnectionPool) -> bool:
    """Whether the change log, its triggers and the events table exist (schema version 12): without them (a role that
    may not create objects) there is nothing to fold, statistics read the base tables and the read
    cache stays off."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT to_regclass('migration_api_events') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_trigger "
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
    return Litestar(
        route_handlers=[
            SystemController,
            RunsController,
            StepsController,
            StatsController,
            TimelineController,
            EventsController,
            DashboardController,
            *static_routers(),
            dashboard_static_router(),
        ],
        lifespan=[database_lifespan],
        state=_initial_state(settings),
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[forget_written_run],
        template_config=template_config(),
        openapi_config=openapi_config(title=API_NAME, version=API_VERSION, description=API_DESCRIPTION),
        logging_config=LoggingConfig(
            root={"level": settings.log_level, "handlers": ["queue_listener"]},
            log_exceptions="never",  # errors.py logs every 5xx once, with method and path
        ),
        request_max_body_size=settings.request_max_body_size,
        debug=settings.debug,
    )


def _initial_state(settings: Settings) -> Any:
    from litestar.datastructures import State

    return State(
        {"settings": settings, "embedded": None, "schema_version": 0, "run_cache": None, "folder": None, "hub": None}
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
    uvicorn.run(
        "app:app",
        host=settings.host,
        port=settings.port,
        reload=args.reload,
        workers=None if args.reload else args.workers,
        timeout_graceful_shutdown=5,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()
