"""Wire types of the service-level routes (controllers/system.py): API info with its links and
how callers are checked, health, liveness and readiness."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec


class ApiLinks(msgspec.Struct):
    docs: str
    redoc: str
    elements: str
    openapi: str
    health: str
    migrations: str
    search: str
    stats: str
    dashboard: str
    live: str = "/health/live"
    ready: str = "/health/ready"
    metrics: str = "/metrics"


class AuthInfo(msgspec.Struct):
    """How callers are checked: "api_keys" (a bearer token with the operation's scope) or "open"
    (no key configured: anyone who reaches the port may do anything)."""

    mode: Literal["open", "api_keys"]
    scopes: dict[str, str]
    warning: str | None = None


class ApiInfo(msgspec.Struct):
    name: str
    version: str
    description: str
    links: ApiLinks
    auth: AuthInfo


class DatabaseHealth(msgspec.Struct):
    status: str
    latency_ms: float
    server_version: str
    schema: str
    schema_version: int
    embedded: bool


class DerivedHealth(msgspec.Struct):
    """The data the service derives from the engines' change log (roll-ups, search documents):
    "ready"; "rebuilding" (statistics and search read the base tables meanwhile); "stopped" (the
    folder lost its connection and retries); "off" (no change log installed)."""

    status: str = "off"
    note: str | None = None
    # Whether log rows waited to be folded at the folder's last look.
    backlog: bool = False


class EventsHealth(msgspec.Struct):
    """This process's change stream (events/): whether its listener is connected, how many
    streams it serves, the newest event id it has handed out."""

    listening: bool = False
    clients: int = 0
    last_id: int = 0


class ReplicaHealth(msgspec.Struct):
    """The read replica (`DATABASE_READ_URL`) as this process last saw it: "up" (lists are read
    there), "lagging" (more than REPLICA_MAX_LAG_SECONDS behind), "down", "not a standby" or
    "starting"; whatever is not "up" is read on the primary."""

    state: str
    note: str | None = None
    lag_seconds: float | None = None
    lag_bytes: int | None = None
    # List reads this process served from the replica since it started.
    reads: int = 0


class Health(msgspec.Struct):
    status: str
    database: DatabaseHealth
    derived: DerivedHealth
    events: EventsHealth = msgspec.field(default_factory=EventsHealth)
    # Absent without DATABASE_READ_URL.
    replica: ReplicaHealth | None = None


class Liveness(msgspec.Struct):
    status: Literal["alive"] = "alive"


class ReadinessCheck(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(description="database, schema_version, or a background task's name")]
    ok: bool
    note: str | None = None


class Readiness(msgspec.Struct):
    """200 when every check passes; 503 (with `detail` naming the failed checks) otherwise."""

    status: Literal["ready", "not ready"]
    checks: list[ReadinessCheck]
    detail: str | None = None
