"""Every SQL statement that touches `workflow_checkpoints`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import args_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from db.loaders import fetch_all
from dto.steps import CheckpointCreate, CheckpointRead

CHECKPOINT_COLUMNS: Final = "id, run_id, checkpoint_name, state_data, created_at, metadata"
# Joined from the run itself so that one round trip also says whether the run exists (see states).
SELECT_CHECKPOINTS_OF_RUN: Final = """
    SELECT c.id, c.run_id, c.checkpoint_name, c.state_data, c.created_at, c.metadata
      FROM migration_runs r LEFT JOIN workflow_checkpoints c ON c.run_id = r.id
     WHERE r.id = %(run_id)s ORDER BY c.created_at, c.id"""
SELECT_CHECKPOINT: Final = f"""
    SELECT {CHECKPOINT_COLUMNS} FROM workflow_checkpoints WHERE run_id = %(run_id)s AND id = %(id)s"""
# Newest first; `name` NULL means any name.
SELECT_LATEST_CHECKPOINT: Final = f"""
    SELECT {CHECKPOINT_COLUMNS} FROM workflow_checkpoints
     WHERE run_id = %(run_id)s AND (%(name)s::text IS NULL OR checkpoint_name = %(name)s::text)
     ORDER BY created_at DESC, id DESC LIMIT 1"""
# clock_timestamp(), not now(): the items of one batch get increasing times, in the order sent.
INSERT_CHECKPOINT: Final = f"""
    INSERT INTO workflow_checkpoints (id, run_id, checkpoint_name, state_data, metadata, created_at)
    VALUES (%(id)s, %(run_id)s, %(checkpoint_name)s, %(state_data)s, %(metadata)s, clock_timestamp())
    RETURNING {CHECKPOINT_COLUMNS}"""


class CheckpointsRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def list_for_run(self, run_id: uuid.UUID) -> list[CheckpointRead] | None:
        """The run's checkpoints, oldest first; None when there is no such run."""
        async with self.pool.connection() as conn:
            rows = await fetch_all(conn, SELECT_CHECKPOINTS_OF_RUN, {"run_id": run_id}, prepare=True)
        return [CheckpointRead(*row) for row in rows if row[0] is not None] if rows else None

    async def get(self, run_id: uuid.UUID, checkpoint_id: uuid.UUID) -> CheckpointRead | None:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=args_row(CheckpointRead))
            await cur.execute(SELECT_CHECKPOINT, {"run_id": run_id, "id": checkpoint_id})
            return await cur.fetchone()

    async def latest(self, run_id: uuid.UUID, name: str | None = None) -> CheckpointRead | None:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=args_row(CheckpointRead))
            await cur.execute(SELECT_LATEST_CHECKPOINT, {"run_id": run_id, "name": name})
            return await cur.fetchone()

    @staticmethod
    async def insert_many(
        conn: AsyncConnection[Any], run_id: uuid.UUID, checkpoints: Sequence[CheckpointCreate]
    ) -> list[CheckpointRead]:
        """Insert checkpoints on the caller's transaction; rows in the order given."""
        params = [
            {
                "id": uuid.uuid4(),
                "run_id": run_id,
                "checkpoint_name": c.checkpoint_name,
                "state_data": Jsonb(c.state_data),
                "metadata": None if c.metadata is None else Jsonb(c.metadata),
            }
            for c in checkpoints
        ]
        cur = conn.cursor(row_factory=args_row(CheckpointRead))
        await cur.executemany(INSERT_CHECKPOINT, params, returning=True)
        rows: list[CheckpointRead] = []
        async for result in cur.results():
            rows.extend(await result.fetchall())
        return rows
