"""Wire types shared by every resource: error bodies, API info, health."""

from __future__ import annotations

from typing import Any

import msgspec


class ErrorDetail(msgspec.Struct):
    """Where a validation error was found and what was wrong."""

    message: str
    key: str | None = None
    source: str | None = None


class ErrorResponse(msgspec.Struct):
    """The body of every 4xx and 5xx response."""

    status_code: int
    detail: str
    extra: list[ErrorDetail] | dict[str, Any] | None = None


class ApiLinks(msgspec.Struct):
    docs: str
    redoc: str
    elements: str
    openapi: str
    health: str
    migrations: str
    search: str
    stats: str


class ApiInfo(msgspec.Struct):
    name: str
    version: str
    description: str
    links: ApiLinks


class DatabaseHealth(msgspec.Struct):
    status: str
    latency_ms: float
    server_version: str
    schema: str
    schema_version: int
    embedded: bool


class Health(msgspec.Struct):
    status: str
    database: DatabaseHealth
