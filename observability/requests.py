"""One log line per request (method, route template, status, duration, request id), and the
request id echoed in `X-Request-ID`.

Hand-written because Litestar's LoggingMiddleware logs the request and the response as two
records, with neither the duration nor the route template; this is one ASGI middleware of a few
lines on Litestar's `ASGIMiddleware` base."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Final

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER: Final = "X-Request-ID"
# A client's id is kept when it is short and plain; anything else is replaced, so a log line can
# never carry an injected newline or a token pasted in the wrong header.
_CLIENT_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

logger = structlog.stdlib.get_logger("migration_api.requests")
# The same logger through the standard library, for its cached level check: with LOG_LEVEL above
# INFO the request line is not built at all (structlog would build it, then drop it).
_level = logging.getLogger("migration_api.requests")


def choose_request_id(scope: Scope) -> str:
    """The client's `X-Request-ID` when it is short and plain, otherwise a new random one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _CLIENT_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestLogMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request_id = choose_request_id(scope)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await next_app(scope, receive, send_with_id)
        finally:
            if _level.isEnabledFor(logging.INFO):
                logger.info(
                    "request",
                    method=scope.get("method"),
                    route=scope.get("path_template") or scope.get("path"),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.reset_contextvars(**tokens)
