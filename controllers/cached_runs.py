"""`GET /api/v1/migrations/{run_id}` answered from the read cache before Litestar's handler
machinery runs.

The hottest read of the API is a dashboard polling one run. A cache hit needs no database, yet
going through the handler costs it dependency resolution (the unit of work, the repository),
signature parsing, header parsing and a `Response` object: about two thirds of the service's CPU
per request, measured in-process (docs/performance.md, "a cached run answered before the
handler"). This route-level middleware runs after routing and after the app's middlewares (request
log, metrics, authentication, rate limit), so a hit is still logged, counted, authorised and
budgeted; it answers only a plain hit and hands everything else to the handler unchanged:

- a query string (the handler's input checks apply to it), an id that is not a UUID, an
  `If-None-Match` longer than its documented limit (the handler's 400 for both), a cache that is
  off or holds no such run.

On a hit it sends what the handler sends for the same cached body: 200 with the body and its
`ETag`, or 304 with the `ETag` when `If-None-Match` names it (the same `etag_matches` rule).
tests/test_run_cache.py holds both answers byte for byte against the handler's.

Hand-written rather than Litestar's response cache (`cache=` on the route, kept in a store):
that cache keys a whole response by URL with a time to live, so it cannot drop one run when the
change log says it changed, would replay a 200 to a request whose `If-None-Match` matches, and
could store a response read before a change after it. The read cache (cache/) already holds each
run's exact body and tag with none of those gaps; this only answers from it sooner.
"""

from __future__ import annotations

import uuid
from typing import Final

from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from controllers.protocol import ETAG_LIST_MAX_LENGTH, etag_matches

_IF_NONE_MATCH: Final = b"if-none-match"
_JSON: Final = (b"content-type", b"application/json")


class CachedRunAnswer:
    """A plain ASGI middleware for the one route (observability/requests.py says why not on
    Litestar's `ASGIMiddleware` base)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache = scope["app"].state.run_cache
        if cache is None or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        try:
            run_id = uuid.UUID(scope["path_params"]["run_id"])
        except ValueError:
            await self.app(scope, receive, send)
            return
        # Repeated headers are one comma-separated list (RFC 9110, 5.3); one longer than the
        # parameter allows gets the handler's 400.
        if_none_match = b", ".join(value for name, value in scope["headers"] if name == _IF_NONE_MATCH)
        found = cache.hit("run", run_id) if len(if_none_match) <= ETAG_LIST_MAX_LENGTH else None
        if found is None:
            await self.app(scope, receive, send)
            return
        body, tag = found
        etag = (b"etag", tag.encode())
        start: HTTPResponseStartEvent
        if if_none_match and etag_matches(if_none_match.decode("latin-1"), tag):
            start = {"type": "http.response.start", "status": 304, "headers": [etag]}
            body = b""
        else:
            headers = [_JSON, etag, (b"content-length", str(len(body)).encode())]
            start = {"type": "http.response.start", "status": 200, "headers": headers}
        await send(start)
        end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
        await send(end)
