"""Access control: API keys and their scopes, the middleware that checks them, per-key
rate limits, and the command that manages keys (`python -m auth --help`).

- tokens.py: scopes, token generation, HMAC-SHA256 hashing, the API_KEYS setting's format
- store.py: every SQL statement on `migration_api_keys`
- access.py: the authentication middleware and its scope check, `requires(scope)` for routes
- ratelimit.py: Litestar's rate limiter keyed by API key, Redis or in-process store
- __main__.py: `python -m auth create|list|revoke`
"""

from auth.access import (
    SECURITY_SCHEME,
    KeyRing,
    Principal,
    auth_middleware,
    check_scope,
    open_or,
    requires,
)
from auth.tokens import ADMIN, READ, SCOPE_TEXT, SCOPES, WRITE

__all__ = [
    "ADMIN",
    "READ",
    "SCOPES",
    "SCOPE_TEXT",
    "SECURITY_SCHEME",
    "WRITE",
    "KeyRing",
    "Principal",
    "auth_middleware",
    "check_scope",
    "open_or",
    "requires",
]
