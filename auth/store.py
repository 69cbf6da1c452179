"""Every SQL statement that touches `migration_api_keys` (db/migrations/0014_api_keys.sql)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

import msgspec
import psycopg
from psycopg import AsyncConnection

from auth.tokens import hash_token, new_token, shown_prefix

KEY_COLUMNS: Final = "id, name, scopes, token_prefix, created_at, revoked_at"
SELECT_ACTIVE_KEY_BY_HASH: Final = """
    SELECT name, scopes FROM migration_api_keys WHERE token_hash = %(token_hash)s AND revoked_at IS NULL"""
# Revoked keys count: revoking the last key must not open the service to everyone.
SELECT_ANY_KEY: Final = "SELECT EXISTS (SELECT 1 FROM migration_api_keys)"
SELECT_KEYS: Final = f"SELECT {KEY_COLUMNS} FROM migration_api_keys ORDER BY created_at, id"
INSERT_KEY: Final = f"""
    INSERT INTO migration_api_keys (id, name, scopes, token_hash, token_prefix)
    VALUES (%(id)s, %(name)s, %(scopes)s, %(token_hash)s, %(token_prefix)s)
    RETURNING {KEY_COLUMNS}"""
# By name (the active key of that name) or by id (any key).
REVOKE_KEY: Final = f"""
    UPDATE migration_api_keys SET revoked_at = now()
     WHERE revoked_at IS NULL AND (name = %(name)s OR id::text = %(name)s)
    RETURNING {KEY_COLUMNS}"""


class ApiKeyRead(msgspec.Struct):
    """An API key as listed: never its token, only the first characters of it."""

    id: uuid.UUID
    name: str
    scopes: list[str]
    token_prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(msgspec.Struct):
    """A new key with its token, which is shown this once and never again."""

    key: ApiKeyRead
    token: str


async def find_active(conn: AsyncConnection[Any], token_hash: str) -> tuple[str, tuple[str, ...]] | None:
    """The name and scopes of the active key with this hash; None if none (or no table)."""
    try:
        cur = await conn.execute(SELECT_ACTIVE_KEY_BY_HASH, {"token_hash": token_hash}, prepare=True)
    except psycopg.errors.UndefinedTable:
        return None
    row = await cur.fetchone()
    return (row[0], tuple(row[1])) if row else None


async def any_key(conn: AsyncConnection[Any]) -> bool:
    """Whether a key was ever made in the table, revoked or not (False when it is not installed)."""
    try:
        cur = await conn.execute(SELECT_ANY_KEY)
    except psycopg.errors.UndefinedTable:
        return False
    row = await cur.fetchone()
    return bool(row and row[0])


async def list_keys(conn: AsyncConnection[Any]) -> list[ApiKeyRead]:
    cur = await conn.execute(SELECT_KEYS)
    return [ApiKeyRead(*row) for row in await cur.fetchall()]


async def create_key(conn: AsyncConnection[Any], name: str, scopes: tuple[str, ...], pepper: str) -> ApiKeyCreated:
    """Store a new key (its hash); the returned token is the only copy."""
    token = new_token()
    cur = await conn.execute(
        INSERT_KEY,
        {
            "id": uuid.uuid4(),
            "name": name,
            "scopes": list(scopes),
            "token_hash": hash_token(token, pepper),
            "token_prefix": shown_prefix(token),
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return ApiKeyCreated(key=ApiKeyRead(*row), token=token)


async def revoke_key(conn: AsyncConnection[Any], name_or_id: str) -> ApiKeyRead | None:
    """Revoke the active key of that name (or with that id); None when there is none."""
    cur = await conn.execute(REVOKE_KEY, {"name": name_or_id})
    row = await cur.fetchone()
    return ApiKeyRead(*row) if row else None
