"""Who is calling, and may they: the authentication middleware reads the bearer token and
compares the key's scopes with the scope the operation declares (`opt["scope"]`)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Final

import msgspec
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from psycopg_pool import AsyncConnectionPool

from auth import store
from auth.tokens import SCOPES, ConfiguredKey, hash_token

logger = logging.getLogger("migration_api.auth")

SCOPE_OPT: Final = "scope"
SECURITY_SCHEME: Final = "BearerAuth"
REALM: Final = 'Bearer realm="migration-api"'
# Cached lookups per process: a key revoked in the table stops working within this many seconds
# in every process (at once in the process that revoked it over HTTP).
CACHE_MAX_ENTRIES: Final = 10_000
_CHECKED: Final = frozenset({ScopeType.HTTP, ScopeType.WEBSOCKET})


class Principal(msgspec.Struct, frozen=True):
    """The caller: a key's name and scopes, or everyone in open mode."""

    name: str
    scopes: frozenset[str]
    open_mode: bool = False


OPEN_PRINCIPAL: Final = Principal(name="open mode", scopes=frozenset(SCOPES), open_mode=True)


class KeyRing:
    """The keys this process knows: those of API_KEYS (hashes, in memory) and those of the table,
    looked up by hash and remembered for `cache_seconds`."""

    def __init__(self, configured: tuple[ConfiguredKey, ...], pepper: str, cache_seconds: float) -> None:
        self.configured = {k.token_hash: k for k in configured}
        self.pepper = pepper
        self.cache_seconds = cache_seconds
        self.pool: AsyncConnectionPool | None = None
        self._found: dict[str, tuple[float, Principal | None]] = {}
        self._table_has_keys: tuple[float, bool] | None = None
        # One table read at a time: when an answer expires under a burst of requests, the first
        # reads it again and the others wait for that answer, instead of each taking a pooled
        # connection (a thousand event streams opened at once emptied the pool: 503s).
        self._reading = asyncio.Lock()

    def attach(self, pool: AsyncConnectionPool) -> None:
        """Read the key table through `pool` (at each start of the app, in its event loop, to
        which the lock then belongs)."""
        self.pool = pool
        self._reading = asyncio.Lock()
        self.forget()

    def forget(self) -> None:
        """Drop every cached answer (after a key was created or revoked in this process)."""
        self._found.clear()
        self._table_has_keys = None

    async def keyed(self) -> bool:
        """False in open mode: no key in API_KEYS and none ever made in the table (revoking every
        key leaves the service keyed: nobody gets in until a new key is made)."""
        if self.configured:
            return True
        known = self._table_has_keys
        if known is not None and known[0] > time.monotonic():
            return known[1]
        async with self._reading:
            known = self._table_has_keys
            now = time.monotonic()
            if known is not None and known[0] > now:
                return known[1]  # read by the request this one waited for
            assert self.pool is not None
            # The pool's, not the request's unit of work: the middleware runs before dependencies exist.
            async with self.pool.connection() as conn:
                answer = await store.any_key(conn)
            self._table_has_keys = (now + self.cache_seconds, answer)
            return answer

    async def lookup(self, token: str) -> Principal | None:
        digest = hash_token(token, self.pepper)
        configured = self.configured.get(digest)
        if configured is not None:
            return Principal(name=configured.name, scopes=frozenset(configured.scopes))
        cached = self._found.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self._reading:
            cached = self._found.get(digest)
            now = time.monotonic()
            if cached is not None and cached[0] > now:
                return cached[1]  # read by the request this one waited for
            assert self.pool is not None
            # The pool's, not the request's unit of work: the middleware runs before dependencies exist.
            async with self.pool.connection() as conn:
                row = await store.find_active(conn, digest)
            principal = None if row is None else Principal(name=row[0], scopes=frozenset(row[1]))
            if len(self._found) >= CACHE_MAX_ENTRIES:
                self._found.clear()
            self._found[digest] = (now + self.cache_seconds, principal)
            return principal


def _unauthorized(detail: str, error: str | None = None) -> NotAuthorizedException:
    challenge = REALM + (f', error="{error}"' if error else "")
    return NotAuthorizedException(detail=detail, headers={"WWW-Authenticate": challenge})


class ApiKeyMiddleware:
    """Sets `scope["user"]` (`request.user`) to the caller's Principal, or raises the 401 or 403
    (the token never appears in the answer or in a log line). Open paths, OPTIONS (CORS preflight)
    and connections other than HTTP and WebSocket pass unchecked.

    A plain ASGI middleware rather than one on Litestar's AbstractAuthenticationMiddleware: that
    base builds an ASGIConnection and runs its generic bypass checks on every request, which with
    the other request middlewares cost a cached read a third of its CPU (docs/performance.md).
    The bypass rules it applied are kept: the same anchored path patterns, matched against the
    same path (the raw path for mounted apps)."""

    def __init__(self, app: ASGIApp, open_paths: tuple[str, ...]) -> None:
        self.app = app
        patterns = open_path_patterns(open_paths)
        self.open_path = re.compile("|".join(patterns)) if patterns else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in _CHECKED and scope.get("method") != "OPTIONS" and not self._is_open(scope):
            principal = await authenticate(scope)
            scope["user"] = principal
            scope["auth"] = None if principal.open_mode else principal.name
        await self.app(scope, receive, send)

    def _is_open(self, scope: Scope) -> bool:
        if self.open_path is None:
            return False
        handler = scope.get("route_handler")
        path = scope["raw_path"].decode() if getattr(handler, "is_mount", False) else scope["path"]
        return self.open_path.search(path) is not None


async def authenticate(scope: Scope) -> Principal:
    """The caller of this request, whose key holds the scope its operation declares."""
    ring: KeyRing = scope["litestar_app"].state.keyring
    if not await ring.keyed():
        return OPEN_PRINCIPAL
    header = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            header = value.decode("latin-1")
            break
    if not header:
        raise _unauthorized("an API key is required: send the header `Authorization: Bearer <token>`")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("the Authorization header must be `Bearer <token>`", "invalid_request")
    principal = await ring.lookup(token)
    if principal is None:
        raise _unauthorized("unknown or revoked API key", "invalid_token")
    check_scope(principal, scope["route_handler"])
    return principal


def check_scope(principal: Principal, handler: BaseRouteHandler) -> None:
    """The caller's key must hold the scope the operation declares (run by the middleware above,
    once the key is known; in open mode, and on open paths where the middleware does not run,
    there is nothing to check). An operation that declares no scope is refused to every key, so
    that a route added without one fails closed. Not a Litestar guard: Litestar copies the route
    handler for every guard call, about a tenth of the CPU of a cached read."""
    needed = handler.opt.get(SCOPE_OPT)
    if needed not in SCOPES:
        raise PermissionDeniedException(detail="this operation declares no scope; it is refused to every key")
    if needed in principal.scopes:
        return
    raise PermissionDeniedException(
        detail=f"the API key '{principal.name}' lacks the '{needed}' scope this operation requires"
    )


def open_path_patterns(paths: tuple[str, ...]) -> list[str]:
    """Anchored regexes for the open paths: each path itself and everything below it ('/' alone
    is just the root). Litestar searches these anywhere in the path, hence the anchors."""
    patterns = []
    for path in paths:
        stem = path.rstrip("/")
        patterns.append("^/$" if not stem else f"^{re.escape(stem)}(/.*)?$")
    return patterns


def auth_middleware(open_paths: tuple[str, ...]) -> DefineMiddleware:
    return DefineMiddleware(ApiKeyMiddleware, open_paths=open_paths)


def requires(scope: str) -> dict[str, Any]:
    """Route decorator arguments for an operation that needs `scope`: the middleware reads `opt`, the
    OpenAPI document shows `security` (Swagger UI's "Authorize" then sends the token)."""
    assert scope in SCOPES
    return {"opt": {SCOPE_OPT: scope}, "security": [{SECURITY_SCHEME: [scope]}]}


def open_or(scope: str) -> dict[str, Any]:
    """For an operation on an open path by default (`/`, probes): the middleware still wants `scope`
    when AUTH_OPEN_PATHS leaves it out, and the document says a token is optional."""
    arguments = requires(scope)
    arguments["security"] = [{}, *arguments["security"]]
    return arguments
