"""The Migration-Accelerators API: `create_app()` builds it; `python app.py` or `uvicorn app:app` serve it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import anyio.to_thread
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.spec import Components, SecurityScheme
from psycopg_pool import AsyncConnectionPool

from auth import SECURITY_SCHEME, KeyRing, auth_middleware
from auth.controller import ApiKeysController
from auth.ratelimit import STORE_NAME, rate_limit_middleware, rate_limit_store
from cache import RunCache, listen
from changelog import Folder
from changelog.folder import stop as stop_task
from config import ConfigError, Settings, load_settings
from controllers.events import EventsController
from controllers.lenient import TimestampPlusMiddleware
from controllers.protocol import check_input
from controllers.runs import RunsController
from controllers.stats import StatsController
from controllers.steps import StepsController
from controllers.system import API_DESCRIPTION, API_NAME, API_VERSION, OPEN_MODE_WARNING, SystemController
from controllers.timeline import TimelineController
from dashboard import DashboardController, dashboard_static_router, template_config
from db.embedded import start_embedded
from db.outage import Gate, heartbeat
from db.pool import check_pooled_schema, create_pool
from db.reach import DatabaseUnreachable, check_database, target
from db.replica import Replica, stamp_commit_position
from db.schema import ensure_schema, repair_schema
from db.unit_of_work import provide_unit_of_work
from docs_site import StrictStructSchemaPlugin, mark_optional_bodies, openapi_config, static_routers
from errors import EXCEPTION_HANDLERS
from events import Hub, end_streams_on_signals
from observability import metrics
from observability.logs import configure_logging
from observability.requests import RequestLogMiddleware

logger = logging.getLogger("migration_api")


@asynccontextmanager
async def database_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Start the embedded server if no database is configured, bring the schema up, open the pool,
    start the database heartbeat (db/outage.py), the change-log folder, the event hub and the read
    cache's listener; warn when no API key is configured (open mode); then log the startup banner."""
    settings: Settings = app.state.settings
    embedded = None
    url = settings.database_url
    if url is None:
        embedded = await anyio.to_thread.run_sync(start_embedded, settings.embedded_pg_dir)
        url = embedded.url
    # What needs a session of its own goes straight to the server, not through a pooler.
    direct = settings.database_direct_url or url
    try:
        try:
            await anyio.to_thread.run_sync(check_database, url)
            if direct != url:
                await anyio.to_thread.run_sync(check_database, direct)
        except DatabaseUnreachable as exc:
            logger.error("%s", exc)  # one line; the startup failure below repeats it for uvicorn
            raise StartupFailed(str(exc)) from None
        version = 0
        if settings.migrate_on_start:
            report = await anyio.to_thread.run_sync(ensure_schema, direct, settings.db_schema)
            version = report.version
        gate: Gate = app.state.gate
        pool = create_pool(url, settings, gate)
        await pool.open(wait=True, timeout=max(settings.pool_timeout, 10.0))
        await check_pooled_schema(pool, settings)
        app.state.pool = pool
        app.state.embedded = embedded
        app.state.keyring.attach(pool)
        tasks: list[asyncio.Task[None]] = app.state.background_tasks
        # The heartbeat asks the server itself: behind a pooler, a second's wait in its queue under
        # load is no outage, and answering everyone 503 for it would be.
        tasks.append(asyncio.create_task(heartbeat(gate, direct, pool.check), name="database-heartbeat"))
        if settings.database_read_url is not None:
            replica = Replica(settings.database_read_url, settings, pool)
            await replica.open()
            app.state.replica = replica
            tasks.append(asyncio.create_task(replica.run(), name="read-replica-monitor"))
        restore_signals = None
        try:
            app.state.schema_version = version or await _schema_version(pool)
            if await _change_log_installed(pool):
                cache = RunCache(settings.run_cache_bytes, settings.db_schema) if settings.run_cache_bytes > 0 else None
                if cache is not None:
                    cache.gate = gate
                folder = Folder(
                    direct,
                    settings.db_schema,
                    pool,
                    cache,
                    repair=repair_schema,
                    events_retention=settings.events_retention_seconds,
                )
                hub = Hub(direct, pool, queue_size=settings.events_client_queue)
                app.state.run_cache, app.state.folder, app.state.hub = cache, folder, hub
                tasks.append(asyncio.create_task(folder.run(), name="change-log-folder"))
                tasks.append(asyncio.create_task(hub.run(), name="event-listener"))
                restore_signals = end_streams_on_signals(hub)
                if cache is not None:
                    tasks.append(asyncio.create_task(listen(cache, direct), name="run-cache-listener"))
            metrics.watch(app.state)
            keyed = await app.state.keyring.keyed()
            if not keyed:
                logger.warning("%s", OPEN_MODE_WARNING)
            for line in await startup_banner(app, url, keyed):
                logger.info("%s", line)
            yield
        finally:
            if app.state.hub is not None:
                app.state.hub.close()
            if restore_signals is not None:
                restore_signals()
            metrics.unwatch(app.state)
            for task in tasks:
                await stop_task(task)
            tasks.clear()
            if app.state.replica is not None:
                await app.state.replica.close()
                app.state.replica = None
            await pool.close()
    finally:
        if embedded is not None:
            await anyio.to_thread.run_sync(embedded.stop)


# Two statements: a query that names a missing table fails when it is parsed, CASE or not.
SELECT_VERSION_TABLE_EXISTS: Final = "SELECT to_regclass('migration_api_schema_versions') IS NOT NULL"
SELECT_SCHEMA_VERSION: Final = "SELECT coalesce(max(version), 0) FROM migration_api_schema_versions"
SELECT_SERVER_VERSION: Final = "SELECT current_setting('server_version')"


class StartupFailed(RuntimeError):
    """The service cannot start; the message is one line for the operator."""


async def _schema_version(pool: AsyncConnectionPool) -> int:
    """The newest schema version applied (0 when the service's tables are not installed)."""
    async with pool.connection() as conn:
        exists = await (await conn.execute(SELECT_VERSION_TABLE_EXISTS)).fetchone()
        if not (exists and exists[0]):
            return 0
        row = await (await conn.execute(SELECT_SCHEMA_VERSION)).fetchone()
        return int(row[0]) if row else 0


async def startup_banner(app: Litestar, url: str, keyed: bool) -> list[str]:
    """What an operator needs to know once the service is up: one line per topic (add lines here)."""
    settings: Settings = app.state.settings
    async with app.state.pool.connection() as conn:
        row = await (await conn.execute(SELECT_SERVER_VERSION)).fetchone()
    server_version = row[0] if row else "unknown"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"http://{'localhost' if settings.host in {'127.0.0.1', '0.0.0.0'} else host}:{settings.port}"
    embedded = app.state.embedded
    where = (
        f"embedded PostgreSQL {server_version}, data in {embedded.data_dir}"
        if embedded is not None
        else f"PostgreSQL {server_version} at {target(url)}"
    )
    return [
        f"{API_NAME} {API_VERSION} listening on http://{host}:{settings.port} (process {os.getpid()})",
        f"docs: {base}/docs (Swagger UI), {base}/redoc (ReDoc), {base}/elements (Elements), {base}/openapi.json",
        f"database: {where}; schema {settings.db_schema} at version {app.state.schema_version}",
        "access: API keys required (bearer tokens with read, write or admin scope)"
        if keyed
        else "access: OPEN MODE, no API key configured: anyone who reaches the port may read, write and delete",
        f"dashboard: {base}/dashboard; live changes: {base}/api/v1/events",
    ]


async def _change_log_installed(pool: AsyncConnectionPool) -> bool:
    """Whether the change log, its triggers and the events table exist (schema versions 12 and 13):
    without them (a role that may not create objects) there is nothing to fold, statistics read the
    base tables and the read cache stays off."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT to_regclass('migration_api_events') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_trigger "
            "WHERE tgrelid = to_regclass('migration_runs') AND tgname = 'migration_api_log_update')"
        )
        row = await cur.fetchone()
        return bool(row and row[0])


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the application; reads the environment only when no settings are given."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    # Outermost first: the request line and its id, timestamps' `+` read as meant, then metrics
    # (which see every answer, 401 and 429 included), then who is calling, then their budget
    # (which needs to know who).
    middleware: list[Any] = [
        RequestLogMiddleware,
        TimestampPlusMiddleware,
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
            EventsController,
            DashboardController,
            ApiKeysController,
            metrics.MetricsController,
            *static_routers(),
            dashboard_static_router(),
        ],
        lifespan=[database_lifespan],
        on_startup=[mark_optional_bodies],
        state=_initial_state(settings),
        exception_handlers=EXCEPTION_HANDLERS,
        dependencies={"work": Provide(provide_unit_of_work)},
        before_send=[stamp_commit_position],
        template_config=template_config(),
        before_request=check_input,
        middleware=middleware,
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
            "hub": None,
            "replica": None,
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


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to 65535, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to 65535, got {text!r}")
    return port


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python app.py",
        description="Serve the Migration-Accelerators API with uvicorn. Settings come from the environment "
        "and .env (README, Configuration); --host and --port override HOST and PORT.",
    )
    parser.add_argument("--host", help="address to listen on (default: HOST, else 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="port to listen on (default: PORT, else 8000)")
    parser.add_argument("--workers", type=_workers, default=1, help="worker processes (default 1; not with --reload)")
    parser.add_argument("--reload", action="store_true", help="restart when a source file changes (development)")
    args = parser.parse_args(argv)
    if args.reload and args.workers > 1:
        parser.error(
            "--workers cannot be combined with --reload: the reloader runs a single process that it restarts "
            "on every change; use --reload for development or --workers N to serve"
        )

    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    host, port = args.host or settings.host, args.port or settings.port
    # Workers and the reloader's processes build the app from the environment (`app:app`).
    os.environ["HOST"], os.environ["PORT"] = host, str(port)
    if settings.database_url is not None:
        # Checked here, before uvicorn starts: a worker whose startup fails would print a traceback,
        # and under --reload the reloader would stay up with nothing listening.
        try:
            check_database(settings.database_url)
        except DatabaseUnreachable as exc:
            sys.exit(f"error: {exc}")
    # uvicorn's own lines go through the service's formatter (observability/logs.py); the
    # service logs one line per request itself, so uvicorn's access line is off.
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "app:app",
        host=host,
        port=port,
        reload=args.reload,
        workers=None if args.reload else args.workers,
        timeout_graceful_shutdown=5,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
