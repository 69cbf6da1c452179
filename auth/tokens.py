"""Scopes, tokens and their keyed hashes: pure functions, no I/O."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

import msgspec

READ: Final = "read"
WRITE: Final = "write"
ADMIN: Final = "admin"
# Each scope grants its own operations only: `read` every GET (and event streams), `write` creates,
# updates, appends and cancels, `admin` deletes and key management. A key holds one or more.
SCOPES: Final = (READ, WRITE, ADMIN)
SCOPE_TEXT: Final = {
    READ: "every GET (runs, states, checkpoints, search, statistics, timeline)",
    WRITE: "create, update, append states and checkpoints, cancel",
    ADMIN: "delete runs, manage API keys",
}
TOKEN_PREFIX: Final = "mapi_"  # noqa: S105 (a marker that makes tokens recognisable, not a secret)
# The first characters of a token, stored and listed so that an operator can tell keys apart.
SHOWN_PREFIX_CHARS: Final = 12
NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Tokens in API_KEYS: long enough that a fast hash cannot be searched, characters safe in a header.
TOKEN_PATTERN: Final = re.compile(r"^[A-Za-z0-9_.~-]{20,200}$")


class ConfiguredKey(msgspec.Struct, frozen=True):
    """A key from the API_KEYS setting; only the hash of its token is kept."""

    name: str
    scopes: tuple[str, ...]
    token_hash: str


def new_token() -> str:
    """A fresh token: 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str, pepper: str) -> str:
    """HMAC-SHA256 of the token keyed with the pepper: tokens are random and long, so a fast
    keyed hash is enough (no password-hashing work factor), and a copy of the table alone is
    useless without the pepper."""
    return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).hexdigest()


def shown_prefix(token: str) -> str:
    return token[:SHOWN_PREFIX_CHARS]


def parse_scopes(raw: str) -> tuple[str, ...]:
    """`read+write` (or `read,write`) as a tuple in canonical order; ValueError names the bad one."""
    parts = [p.strip().lower() for p in re.split(r"[+,\s]+", raw) if p.strip()]
    if not parts:
        raise ValueError(f"no scope given; choose from {'+'.join(SCOPES)}")
    unknown = [p for p in parts if p not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; choose from {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in parts)


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"a key name is 1-64 letters, digits, '_', '.' or '-', got {name!r}")
    return name


def parse_api_keys(raw: str, pepper: str) -> tuple[ConfiguredKey, ...]:
    """API_KEYS: comma-separated `name:scopes:token`, scopes joined by `+`. Error messages name the
    entry by its position and name, never by its token."""
    keys: list[ConfiguredKey] = []
    for position, entry in enumerate((e.strip() for e in raw.split(",")), start=1):
        if not entry:
            continue
        parts = entry.split(":", 2)
        if len(parts) != 3:
            raise ValueError(f"entry {position} is not name:scopes:token")
        name, scopes, token = (p.strip() for p in parts)
        try:
            check_name(name)
            parsed = parse_scopes(scopes)
        except ValueError as exc:
            raise ValueError(f"entry {position}: {exc}") from None
        if not TOKEN_PATTERN.match(token):
            raise ValueError(f"entry {position} ({name}): the token must be 20-200 characters of A-Z a-z 0-9 _ . ~ -")
        keys.append(ConfiguredKey(name=name, scopes=parsed, token_hash=hash_token(token, pepper)))
    hashes = [k.token_hash for k in keys]
    if len(set(hashes)) != len(hashes):
        raise ValueError("two entries share one token")
    return tuple(keys)
