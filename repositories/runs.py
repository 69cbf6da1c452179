"""Every SQL statement that touches `migration_runs`.

Connections come from the pool in autocommit mode: a read is one statement, so it needs no
transaction of its own; a write that takes several statements opens one explicitly.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Final

from psycopg import AsyncConnection, sql
from psycopg.rows import args_row
from psycopg_pool import AsyncConnectionPool

from dto.runs import RunRead

RUN_COLUMNS: Final = (
    "id, file_path, record_type, status, created_at, updated_at, completed_at, total_duration, success, error_message"
)
SELECT_RUN_BY_ID: Final = f"SELECT {RUN_COLUMNS} FROM migration_runs WHERE id = %(id)s"
RUN_EXISTS: Final = "SELECT 1 FROM migration_runs WHERE id = %(id)s"
INSERT_RUN: Final = f"""
    INSERT INTO migration_runs (id, file_path, record_type, status, created_at, updated_at,
                                completed_at, total_duration, success, error_message)
    VALUES (%(id)s, %(file_path)s, %(record_type)s, %(status)s,
            coalesce(%(created_at)s, now()), now(),
            %(completed_at)s, %(total_duration)s, %(success)s, %(error_message)s)
    RETURNING {RUN_COLUMNS}"""
DELETE_RUN_STATES: Final = "DELETE FROM workflow_states WHERE run_id = %(id)s"
DELETE_RUN_CHECKPOINTS: Final = "DELETE FROM workflow_checkpoints WHERE run_id = %(id)s"
DELETE_RUN: Final = "DELETE FROM migration_runs WHERE id = %(id)s RETURNING id"
# The row, locked until the transaction ends, and the transaction's clock (`now()`, as `updated_at` gets).
SELECT_RUN_FOR_UPDATE: Final = f"SELECT {RUN_COLUMNS}, now() FROM migration_runs WHERE id = %(id)s FOR UPDATE"
SEARCH_CONDITION: Final = """(
    file_path ILIKE %(q)s OR record_type ILIKE %(q)s OR status ILIKE %(q)s
    OR error_message ILIKE %(q)s OR id::text ILIKE %(q)s)"""
# Columns a PATCH may set; anything else never reaches SQL.
UPDATABLE_COLUMNS: Final = frozenset(
    {"file_path", "record_type", "status", "completed_at", "total_duration", "success", "error_message"}
)


def like_pattern(term: str) -> str:
    """A substring ILIKE pattern in which `%`, `_` and backslash stand for themselves."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class RunFilters:
    """The list filters of the seed API, turned into a WHERE clause with bound parameters."""

    __slots__ = ("file_path", "q", "record_type", "status")

    def __init__(
        self,
        *,
        record_type: str | None = None,
        file_path: str | None = None,
        status: str | None = None,
        q: str | None = None,
    ) -> None:
        self.record_type = record_type
        self.file_path = file_path
        self.status = status
        self.q = q

    def where(self) -> tuple[sql.Composable, dict[str, Any]]:
        conditions: list[sql.Composable] = []
        params: dict[str, Any] = {}
        if self.record_type is not None:
            conditions.append(sql.SQL("record_type = %(record_type)s"))
            params["record_type"] = self.record_type
        if self.file_path is not None:
            conditions.append(sql.SQL("file_path ILIKE %(file_path)s"))
            params["file_path"] = like_pattern(self.file_path)
        if self.status is not None:
            conditions.append(sql.SQL("status = %(status)s"))
            params["status"] = self.status
        if self.q is not None:
            conditions.append(sql.SQL(SEARCH_CONDITION))
            params["q"] = like_pattern(self.q)
        if not conditions:
            return sql.SQL(""), params
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions), params


_INSERT_DEFAULTS: Final[Mapping[str, Any]] = dict.fromkeys(
    ("created_at", "completed_at", "total_duration", "success", "error_message")
)


async def _insert_run(conn: AsyncConnection[Any], params: Mapping[str, Any]) -> RunRead:
    cur = conn.cursor(row_factory=args_row(RunRead))
    await cur.execute(INSERT_RUN, params)
    row = await cur.fetchone()
    assert row is not None  # INSERT ... RETURNING always returns the row
    return row


class Page:
    """Runs of one page, and the cursor of the next page (None on the last page)."""

    __slots__ = ("next_cursor", "runs")

    def __init__(self, runs: list[RunRead], next_cursor: str | None) -> None:
        self.runs = runs
        self.next_cursor = next_cursor


class LockedRun:
    """A run row locked inside an open transaction, with the transaction's clock."""

    __slots__ = ("conn", "now", "run")

    def __init__(self, conn: AsyncConnection[Any], run: RunRead, now: datetime) -> None:
        self.conn = conn
        self.run = run
        self.now = now

    async def update(self, changes: Mapping[str, Any]) -> RunRead:
        """Set the given columns (and `updated_at`); returns the row as stored."""
        unknown = set(changes) - UPDATABLE_COLUMNS
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        assignments: Sequence[sql.Composable] = [
            sql.SQL("{} = {}").format(sql.Identifier(col), sql.Placeholder(col)) for col in changes
        ]
        query = sql.SQL("UPDATE migration_runs SET {sets} WHERE id = %(id)s RETURNING {cols}").format(
            sets=sql.SQL(", ").join([*assignments, sql.SQL("updated_at = now()")]),
            cols=sql.SQL(RUN_COLUMNS),
        )
        cur = self.conn.cursor(row_factory=args_row(RunRead))
        await cur.execute(query, {**changes, "id": self.run.id})
        row = await cur.fetchone()
        assert row is not None  # the row is locked by this transaction, so it still exists
        return row

    async def delete(self) -> None:
        """Delete the run with its states and checkpoints (no reliance on the engines' FKs
        cascading: some databases declare them without ON DELETE CASCADE)."""
        params = {"id": self.run.id}
        await self.conn.execute(DELETE_RUN_STATES, params)
        await self.conn.execute(DELETE_RUN_CHECKPOINTS, params)
        await self.conn.execute(DELETE_RUN, params)


class RunsRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def get(self, run_id: uuid.UUID) -> RunRead | None:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=args_row(RunRead))
            await cur.execute(SELECT_RUN_BY_ID, {"id": run_id})
            return await cur.fetchone()

    async def exists(self, run_id: uuid.UUID) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(RUN_EXISTS, {"id": run_id})
            return await cur.fetchone() is not None

    async def list(self, filters: RunFilters, *, limit: int, offset: int) -> list[RunRead]:
        where, params = filters.where()
        query = sql.Composed(
            [
                sql.SQL(f"SELECT {RUN_COLUMNS} FROM migration_runs"),
                where,
                sql.SQL(" ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s"),
            ]
        )
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=args_row(RunRead))
            await cur.execute(query, {**params, "limit": limit, "offset": offset})
            return await cur.fetchall()

    async def create(self, columns: Mapping[str, Any], conn: AsyncConnection[Any] | None = None) -> RunRead:
        """Insert a run from its column values (`id` required; `created_at` None means now).

        On `conn` when given (the caller's transaction), else on a pooled connection.
        """
        params = {**_INSERT_DEFAULTS, **columns}
        if conn is not None:
            return await _insert_run(conn, params)
        async with self.pool.connection() as own:
            return await _insert_run(own, params)

    @asynccontextmanager
    async def locked(self, run_id: uuid.UUID) -> AsyncIterator[LockedRun | None]:
        """The run locked FOR UPDATE in a transaction that ends with the block (None if no such run).

        Whatever the block checks against `LockedRun.run` still holds when it writes: concurrent
        writers through this method wait, so a read-check-write cannot interleave.
        """
        async with self.pool.connection() as conn, conn.transaction():
            yield await self.lock(conn, run_id)

    @staticmethod
    async def lock(conn: AsyncConnection[Any], run_id: uuid.UUID) -> LockedRun | None:
        """Lock the run FOR UPDATE on the caller's transaction (None if no such run)."""
        cur = await conn.execute(SELECT_RUN_FOR_UPDATE, {"id": run_id})
        row = await cur.fetchone()
        return None if row is None else LockedRun(conn, RunRead(*row[:-1]), row[-1])
