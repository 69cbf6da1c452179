"""Service-level routes: API info and health."""

from __future__ import annotations

import asyncio
import time

from litestar import Controller, Response, get, head
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from auth import READ, SCOPE_TEXT, open_or
from controllers.protocol import error_responses
from dto.examples import READINESS_FAILED
from dto.system import (
    ApiInfo,
    ApiLinks,
    AuthInfo,
    DatabaseHealth,
    DerivedHealth,
    EventsHealth,
    Health,
    Liveness,
    Readiness,
    ReadinessCheck,
    ReplicaHealth,
)
from errors import logger

OPEN_MODE_WARNING = (
    "OPEN MODE: no API key is configured (API_KEYS or `make api-key`), so anyone who can reach this "
    "port may read, change and delete runs. Create a key to require one."
)
SELECT_SCHEMA_VERSION = "SELECT coalesce(max(version), 0) FROM migration_api_schema_versions"

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
        response_description=(
            "The API's name, version, description, links to the docs pages and main endpoints, and how callers are "
            "checked."
        ),
        summary="API name, version, links and how callers are checked",
        **open_or(READ),
    )
    async def api_info(self, state: State) -> ApiInfo:
        """Name, version, where to find the docs and the endpoints, and the auth mode (with a
        warning in open mode)."""
        keyed = await state.keyring.keyed()
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
            auth=AuthInfo(
                mode="api_keys" if keyed else "open",
                scopes=dict(SCOPE_TEXT),
                warning=None if keyed else OPEN_MODE_WARNING,
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
        **open_or(READ),
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
        **open_or(READ),
    )
    async def health_head(self, state: State) -> Response[None]:
        """200 when the database answers, 503 when it does not (no body)."""
        probed = await _probe(state)
        return Response(None, status_code=probed.status_code)

    @get(
        "/health/live",
        operation_id="GetLiveness",
        summary="Liveness probe: the process answers",
        response_description="The process answers (nothing else is checked).",
        **open_or(READ),
    )
    async def live(self) -> Liveness:
        """200 whenever the process can answer; touches nothing else (for a liveness probe)."""
        return Liveness()

    @get(
        "/health/ready",
        operation_id="GetReadiness",
        summary="Readiness probe: database, schema version, background tasks",
        response_description=(
            "Every check passed: the database answered at the expected schema version and every background task runs."
        ),
        responses={
            503: ResponseSpec(
                data_container=Readiness,
                description="A check failed: the checks, and `detail` naming the ones that failed",
                generate_examples=False,
                examples=[Example(summary="the database does not answer", value=READINESS_FAILED)],
            )
        },
        **open_or(READ),
    )
    async def ready(self, state: State) -> Response[Readiness]:
        """200 when the pool answers within `HEALTH_TIMEOUT`, the schema is at the version this process
        installed or found, and every background task (database heartbeat, change-log folder, event
        listener, cache listener) runs; else 503."""
        checks = [await _database_check(state)]
        checks += [
            ReadinessCheck(name=task.get_name(), ok=not task.done(), note="stopped" if task.done() else None)
            for task in state.background_tasks
        ]
        failed = [c.name for c in checks if not c.ok]
        if failed:
            body = Readiness(status="not ready", checks=checks, detail=f"not ready: {', '.join(failed)} failed")
            return Response(body, status_code=503)
        return Response(Readiness(status="ready", checks=checks))


async def _probe(state: State) -> Response[Health]:
    timeout = state.settings.health_timeout
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            # Not the request's unit of work: the probe waits at most its own timeout and answers a failure.
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
            replica=None if state.replica is None else ReplicaHealth(**state.replica.health()),
        )
    )


async def _database_check(state: State) -> ReadinessCheck:
    """One round trip that also reads the schema version; a version below the one this process
    started with means the service's objects were removed under it."""
    timeout = state.settings.health_timeout
    try:
        async with asyncio.timeout(timeout):
            # Not the request's unit of work: the probe waits at most its own timeout and answers a failure.
            async with state.pool.connection(timeout=timeout) as conn:
                cur = await conn.execute(SELECT_SCHEMA_VERSION)
                row = await cur.fetchone()
    except Exception as exc:  # every failure here means the same thing to the prober
        return ReadinessCheck(
            name="database", ok=False, note=f"not answering within {timeout:g} s ({exc.__class__.__name__})"
        )
    version = int(row[0]) if row else 0
    if version < state.schema_version:
        return ReadinessCheck(
            name="database", ok=False, note=f"schema version {version}, below {state.schema_version} (uninstalled?)"
        )
    return ReadinessCheck(name="database", ok=True, note=f"schema version {version}")


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
