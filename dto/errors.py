"""The body of every error response (4xx and 5xx), whatever the resource."""

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
