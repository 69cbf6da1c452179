"""Timestamps whose `+` arrived as a space.

In a query string `+` means a space, so the common unencoded
`?created_after=2026-11-25T06:59:52+00:00` reaches the service as `...06:59:52 00:00`, which no
parser reads. A `+` that sits exactly where a UTC offset follows a time of day can only have meant
`+`, so it is read as `%2B` before Litestar parses the query. Any other value is left alone (and a
bad one still gets the 400 that names the parameter).
"""

from __future__ import annotations

import re
from typing import Final

from litestar.types import ASGIApp, Receive, Scope, Send

# date, `T` (or a space, itself sent as `+` or `%20`), time, then `+` and an offset, then the end
# of the value.
_OFFSET_PLUS: Final = re.compile(
    rb"(=\d{4}-\d{2}-\d{2}(?:[Tt]|\+|%20)\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)\+(\d{2}(?::?\d{2})?)(?=&|$)"
)


def repair_query(query: bytes) -> bytes:
    return _OFFSET_PLUS.sub(rb"\1%2B\2", query)


class TimestampPlusMiddleware:
    """A plain ASGI middleware: two lines per request (see observability/requests.py for why not
    on Litestar's `ASGIMiddleware` base)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"")
        if b"+" in query:
            scope["query_string"] = repair_query(query)
        await self.app(scope, receive, send)
