"""One log line per request (method, route template, status, duration, request id), and the
request id echoed in `X-Request-ID`.

Hand-written because Litestar's LoggingMiddleware logs the request and the response as two
records, with neither the duration nor the route template. A plain ASGI middleware rather than one
on Litestar's `ASGIMiddleware` base, whose per-request checks (scope type, excluded paths and opt
keys) this one does not need: every request of a cached read counts (docs/performance.md)."""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Final

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER: Final = "X-Request-ID"
_HEADER_NAME: Final = REQUEST_ID_HEADER.lower().encode()
# A client's id is kept when it is short and plain; anything else is replaced, so a log line can
# never carry an injected newline or a token pasted in the wrong header.
_CLIENT_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

logger = structlog.stdlib.get_logger("migration_api.requests")
# The same logger through the standard library, for its cached level check: with LOG_LEVEL above
# INFO the request line is not built at all (structlog would build it, then drop it).
_level = logging.getLogger("migration_api.requests")


def choose_request_id(scope: Scope) -> str:
    """The client's `X-Request-ID` when it is short and plain, otherwise a new random one: 32 hex
    digits from Python's `random` (a request id correlates log lines; it guards nothing, so it
    needs no system entropy, whose call cost a cached read about 2 % of its CPU here)."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _CLIENT_ID.fullmatch(candidate):
                return candidate
            break
    return f"{random.getrandbits(128):032x}"


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = choose_request_id(scope)
        header = (_HEADER_NAME, request_id.encode())
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # No handler sets this header, so it is appended rather than searched for.
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
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
