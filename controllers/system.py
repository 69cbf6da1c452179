"""Service-level routes: API info and health."""

from __future__ import annotations

import asyncio
import time

from litestar import Controller, Response, get, head
from litestar.datastructures import State

from controllers.common import error_responses
from dto.common import ApiInfo, ApiLinks, DatabaseHealth, DerivedHealth, EventsHealth, Health
from errors import logger

API_NAME = "Migration-Accelerators API"
API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "Monitoring and management of data-migration runs: what ran, what is running, what failed "
    "and why; search, statistics, and the run lifecycle."
)


class SystemController(Controller):
    path = "/"
    tags = ["Service"]

    @get(
        "/",
        operation_id="GetApiInfo",
        response_description="The API's name, version, description and links to the docs pages and main endpoints.",
        summary="API name, version and links",
    )
    async def api_info(self) -> ApiInfo:
        """Name, version and where to find the docs and the endpoints."""
        return ApiInfo(
            name=API_NAME,
            version=API_VERSION,
            description=API_DESCRIPTION,
            links=ApiLinks(
                docs="/docs",
                redoc="/redoc",
                elements="/elements",
                openapi="/openapi.json",
                health="/health",
                migrations="/api/v1/migrations",
                search="/api/v1/migrations/search",
                stats="/api/v1/migrations/stats",
                dashboard="/dashboard",
            ),
        )

    @get(
        "/health",
        operation_id="GetHealth",
        response_description=(
            "The service is up and the database answered: its latency, server version, schema version, and the state "
            "of the derived statistics."
        ),
        summary="Service and database health",
        responses={503: error_responses()[503]},
    )
    async def health(self, state: State) -> Response[Health]:
        """200 with the database's state when it answers; 503 within `HEALTH_TIMEOUT` when it does not."""
        return await _probe(state)

    @head(
        "/health",
        operation_id="HeadHealth",
        response_description=("The service is up and the database answered (no body)."),
        summary="Service and database health, status code only",
        description="The status of `GET /health` without a body, for load balancers and uptime checks.",
        responses={503: error_responses()[503]},
    )
    async def health_head(self, state: State) -> Response[None]:
        """200 when the database answers, 503 when it does not (no body)."""
        probed = await _probe(state)
        return Response(None, status_code=probed.status_code)


async def _probe(state: State) -> Response[Health]:
    timeout = state.settings.health_timeout
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            async with state.pool.connection(timeout=timeout) as conn:
                cur = await conn.execute("SELECT current_setting('server_version')")
                row = await cur.fetchone()
    except Exception as exc:  # every failure here means the same thing to the caller
        logger.warning("GET /health: database not answering: %s", exc.__class__.__name__)
        detail = f"database not answering within {timeout:g} s ({exc.__class__.__name__})"
        return Response({"status_code": 503, "detail": detail}, status_code=503)  # type: ignore[arg-type]
    latency = (time.perf_counter() - started) * 1000
    return Response(
        Health(
            status="ok",
            database=DatabaseHealth(
                status="ok",
                latency_ms=round(latency, 2),
                server_version=row[0] if row else "unknown",
                schema=state.settings.db_schema,
                schema_version=state.schema_version,
                embedded=state.embedded is not None,
            ),
            derived=_derived(state),
            events=_events(state),
        )
    )


def _derived(state: State) -> DerivedHealth:
    folder = state.folder
    if folder is None:
        return DerivedHealth(status="off", note="no change log installed: statistics and search read the base tables")
    m = folder.machinery
    return DerivedHealth(status=m.status, note=m.note, backlog=m.backlog)


def _events(state: State) -> EventsHealth:
    hub = state.hub
    if hub is None:
        return EventsHealth()
    return EventsHealth(listening=hub.listening, clients=hub.clients, last_id=hub.last_id)
