"""Every SQL statement that touches `migration_runs`.

Connections come from the pool in autocommit mode: a read is one statement, so it needs no
transaction of its own; a write that takes several statements opens one explicitly.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from psycopg import sql
from psycopg.rows import args_row
from psycopg_pool import AsyncConnectionPool

from dto.runs import RunCreate, RunRead

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

    async def create(self, run: RunCreate, derived: Mapping[str, Any]) -> RunRead:
        params = {
            "id": run.id or uuid.uuid4(),
            "file_path": run.file_path,
            "record_type": run.record_type,
            "status": run.status.value,
            "created_at": run.created_at,
            "completed_at": run.completed_at,
            "total_duration": run.total_duration,
            "success": run.success,
            "error_message": run.error_message,
            **derived,
        }
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=args_row(RunRead))
            await cur.execute(INSERT_RUN, params)
            row = await cur.fetchone()
            assert row is not None  # INSERT ... RETURNING always returns the row
            return row

    async def update(self, run_id: uuid.UUID, changes: Mapping[str, Any]) -> RunRead | None:
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
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=args_row(RunRead))
            await cur.execute(query, {**changes, "id": run_id})
            return await cur.fetchone()

    async def delete(self, run_id: uuid.UUID) -> bool:
        """Delete the run with its states and checkpoints in one transaction (no reliance on the
        engines' FKs cascading: some databases declare them without ON DELETE CASCADE)."""
        async with self.pool.connection() as conn, conn.transaction():
            params = {"id": run_id}
            await conn.execute(DELETE_RUN_STATES, params)
            await conn.execute(DELETE_RUN_CHECKPOINTS, params)
            cur = await conn.execute(DELETE_RUN, params)
            return await cur.fetchone() is not None
