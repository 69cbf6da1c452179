"""Request budgets per API key (per client address in open mode), on Litestar's RateLimitConfig.

Its `identifier_for_request` hook keys the budget by the Principal the authentication middleware
set (it runs first), and its store is Litestar's: a RedisStore when REDIS_URL is set, so every
worker and instance shares one budget, else a MemoryStore per process. The one addition is
`Retry-After` on the 429 (Litestar sends only the RateLimit-* headers), made by overriding the
header builder rather than by a middleware of our own.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Request
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import (
    DURATION_VALUES,
    CacheObject,
    DurationUnit,
    RateLimitConfig,
    RateLimitMiddleware,
    get_remote_address,
)
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore

from auth.access import Principal, open_path_patterns

STORE_NAME: Final = "rate_limit"
UNITS: Final = tuple(DURATION_VALUES)


def identify(request: Request[Any, Any, Any]) -> str:
    """The budget a request draws on: its key's name, or its client address in open mode."""
    principal = request.scope.get("user")
    if isinstance(principal, Principal) and not principal.open_mode:
        return f"key:{principal.name}"
    return f"address:{get_remote_address(request)}"


class _RateLimitMiddleware(RateLimitMiddleware):
    # Litestar builds the headers of an answer from the budget alone, so the answer that spends the
    # last request of a budget carries Retry-After too (a true statement: the next must wait).
    def create_response_headers(self, cache_object: CacheObject) -> dict[str, str]:
        headers = super().create_response_headers(cache_object)
        if len(cache_object.history) >= self.max_requests:
            headers["Retry-After"] = str(max(1, int(headers[self.config.rate_limit_reset_header_key])))
        return headers


def rate_limit_middleware(limit: tuple[DurationUnit, int], open_paths: tuple[str, ...]) -> DefineMiddleware:
    """The middleware for `limit` requests per unit; the open paths (probes, docs) are not counted."""
    return RateLimitConfig(
        rate_limit=limit,
        identifier_for_request=identify,
        exclude=open_path_patterns(open_paths),
        middleware_class=_RateLimitMiddleware,
        store=STORE_NAME,
    ).middleware


def rate_limit_store(redis_url: str | None, namespace: str) -> Store:
    if redis_url is None:
        return MemoryStore()
    return RedisStore.with_client(url=redis_url, namespace=f"{namespace}:rate_limit")


def parse_rate_limit(raw: str) -> tuple[DurationUnit, int] | None:
    """`100/second`, `6000/minute`, ... or `off`; ValueError with the accepted forms."""
    if raw.strip().lower() in {"off", "0", "none"}:
        return None
    count, _, unit = raw.partition("/")
    unit = unit.strip().lower()
    try:
        number = int(count)
    except ValueError:
        number = 0
    if number < 1 or unit not in UNITS:
        raise ValueError(f"expected N/unit with N >= 1 and unit one of {', '.join(UNITS)}, or off; got {raw!r}")
    return unit, number
