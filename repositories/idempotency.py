"""Every SQL statement that touches `migration_api_idempotency_keys`, and the protocol around it.

A POST that carries an `Idempotency-Key` runs in one transaction that first takes a
transaction-scoped advisory lock on (scope, key): concurrent requests with the same key queue
there. The first one does the work and stores its response in the same transaction; the ones
after it find that response and replay it. A failed request stores nothing (its transaction rolls
back), so its retry runs again. The keys live in PostgreSQL, so this holds across restarts and
across instances.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import msgspec
from psycopg import errors as pg
from psycopg.types.json import Jsonb

from db.unit_of_work import UnitOfWork
from errors import IdempotencyKeyReused, IdempotencyUnavailable

T = TypeVar("T")

IDEMPOTENCY_TABLE: Final = "migration_api_idempotency_keys"
# Class id of this service's per-key advisory locks (the two-int form: its own lock space).
LOCK_CLASS: Final = 736_290
LOCK_KEY: Final = "SELECT pg_advisory_xact_lock(%(lock_class)s::int, hashtext(%(scope)s::text || ' ' || %(key)s::text))"
SELECT_LIVE_KEY: Final = """
    SELECT request_hash, status_code, response_body, headers FROM migration_api_idempotency_keys
     WHERE key = %(key)s AND scope = %(scope)s AND expires_at > now()"""
DELETE_KEY: Final = "DELETE FROM migration_api_idempotency_keys WHERE key = %(key)s AND scope = %(scope)s"
INSERT_KEY: Final = """
    INSERT INTO migration_api_idempotency_keys
           (key, scope, request_hash, status_code, response_body, headers, expires_at)
    VALUES (%(key)s, %(scope)s, %(request_hash)s, %(status_code)s, %(response_body)s, %(headers)s,
            now() + make_interval(secs => %(ttl_seconds)s))"""
# Opportunistic cleanup, bounded so that no request pays for a large backlog at once.
PURGE_EXPIRED_KEYS: Final = """
    DELETE FROM migration_api_idempotency_keys WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM migration_api_idempotency_keys WHERE expires_at <= now() LIMIT 100))"""


@dataclass(frozen=True)
class StoredResponse(Generic[T]):
    """A successful write's response: what a retry with the same key gets again (`replayed`
    when it is that stored copy; the controller says so in a header)."""

    status_code: int
    body: T
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False


def request_hash(scope: str, query: str, body: Any) -> str:
    """A fingerprint of what was asked: the same body sent with other spacing or key order matches."""
    canonical = msgspec.json.encode(body, order="sorted")
    digest = hashlib.sha256(f"{scope}\n{query}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


class IdempotencyStore:
    def __init__(self, work: UnitOfWork, ttl_seconds: float) -> None:
        self.work = work
        self.ttl_seconds = ttl_seconds

    async def once(
        self,
        key: str | None,
        scope: str,
        fingerprint: str,
        action: Callable[[], Awaitable[StoredResponse[T]]],
        body_type: type[T],
    ) -> StoredResponse[T]:
        """Run `action` in the request's transaction; with a key, at most once per (scope, key) until it expires.

        A retry with the same key and fingerprint gets the stored outcome (`replayed=True`); the same
        key with another fingerprint is IdempotencyKeyReused. Without the table (a database user that
        may not create it) a keyed request is IdempotencyUnavailable rather than a silently
        unprotected write.
        """
        async with self.work.transaction() as conn:
            if key is None:
                return await action()
            params = {"key": key, "scope": scope, "lock_class": LOCK_CLASS}
            await conn.execute(LOCK_KEY, params)
            try:
                async with conn.transaction():  # a savepoint: a missing table must not abort the request's
                    cur = await conn.execute(SELECT_LIVE_KEY, params)
                    stored = await cur.fetchone()
            except (pg.UndefinedTable, pg.InsufficientPrivilege) as exc:
                raise IdempotencyUnavailable(
                    f"Idempotency-Key cannot be honoured: the table {IDEMPOTENCY_TABLE} is not usable "
                    f"({exc.__class__.__name__}); run `make migrate` as a user allowed to create it, "
                    "or retry without the header"
                ) from None
            if stored is not None:
                return self._replay(stored, fingerprint, key, body_type)
            await conn.execute(DELETE_KEY, params)  # an expired entry of this key, if any
            done = await action()
            await conn.execute(
                INSERT_KEY,
                {
                    **params,
                    "request_hash": fingerprint,
                    "status_code": done.status_code,
                    "response_body": msgspec.json.encode(done.body),
                    "headers": Jsonb(done.headers),
                    "ttl_seconds": self.ttl_seconds,
                },
            )
            await conn.execute(PURGE_EXPIRED_KEYS)
            return done

    @staticmethod
    def _replay(stored: tuple[Any, ...], fingerprint: str, key: str, body_type: type[T]) -> StoredResponse[T]:
        stored_hash, status_code, response_body, headers = stored
        if stored_hash != fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was already used for a different request body; "
                "use a new key for a new request"
            )
        restored: Mapping[str, str] = headers or {}
        return StoredResponse(
            status_code=status_code,
            body=msgspec.json.decode(bytes(response_body), type=body_type),
            headers=dict(restored),
            replayed=True,
        )
