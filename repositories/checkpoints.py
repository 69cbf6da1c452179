"""Every SQL statement that touches `workflow_checkpoints`."""

from __future__ import annotations

import uuid
from typing import Final

from psycopg.rows import args_row
from psycopg_pool import AsyncConnectionPool

from dto.steps import CheckpointRead

CHECKPOINT_COLUMNS: Final = "id, run_id, checkpoint_name, state_data, created_at, metadata"
SELECT_CHECKPOINTS_OF_RUN: Final = f"""
    SELECT {CHECKPOINT_COLUMNS} FROM workflow_checkpoints
     WHERE run_id = %(run_id)s ORDER BY created_at, id"""


class CheckpointsRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def list_for_run(self, run_id: uuid.UUID) -> list[CheckpointRead]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=args_row(CheckpointRead))
            await cur.execute(SELECT_CHECKPOINTS_OF_RUN, {"run_id": run_id})
            return await cur.fetchall()
